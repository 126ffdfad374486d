#pragma once
// libpq, loaded (dlopen) when the first PostgreSQL database is opened. A service on its
// embedded SQLite default then never maps libpq and what it pulls in (OpenSSL, GnuTLS,
// Kerberos, LDAP, SASL: about 3.5 MiB resident per process, bench/RESULTS.md). The headers
// and the library are Debian's libpq-dev/libpq5, found by pkg-config at configure time, which
// also gives the soname (MERCADO_LIBPQ_SONAME).

#include <libpq-fe.h>

#include <mercado/core/error.hpp>

namespace mercado::storage::detail {

// The libpq functions the PostgreSQL backend calls, by their own names.
struct LibPq {
  decltype(&::PQclear) PQclear = nullptr;
  decltype(&::PQcmdStatus) PQcmdStatus = nullptr;
  decltype(&::PQcmdTuples) PQcmdTuples = nullptr;
  decltype(&::PQconnectdbParams) PQconnectdbParams = nullptr;
  decltype(&::PQdescribePrepared) PQdescribePrepared = nullptr;
  decltype(&::PQerrorMessage) PQerrorMessage = nullptr;
  decltype(&::PQexec) PQexec = nullptr;
  decltype(&::PQexecPrepared) PQexecPrepared = nullptr;
  decltype(&::PQfinish) PQfinish = nullptr;
  decltype(&::PQfname) PQfname = nullptr;
  decltype(&::PQftype) PQftype = nullptr;
  decltype(&::PQgetisnull) PQgetisnull = nullptr;
  decltype(&::PQgetlength) PQgetlength = nullptr;
  decltype(&::PQgetvalue) PQgetvalue = nullptr;
  decltype(&::PQnfields) PQnfields = nullptr;
  decltype(&::PQnparams) PQnparams = nullptr;
  decltype(&::PQntuples) PQntuples = nullptr;
  decltype(&::PQprepare) PQprepare = nullptr;
  decltype(&::PQresultErrorField) PQresultErrorField = nullptr;
  decltype(&::PQresultErrorMessage) PQresultErrorMessage = nullptr;
  decltype(&::PQresultStatus) PQresultStatus = nullptr;
  decltype(&::PQsetNoticeProcessor) PQsetNoticeProcessor = nullptr;
  decltype(&::PQstatus) PQstatus = nullptr;
};

// Loads libpq once (thread-safe); Errc::unavailable, naming the library, when it cannot.
Result<const LibPq*> load_libpq();

// The loaded functions; only after load_libpq() succeeded.
const LibPq& pq() noexcept;

}  // namespace mercado::storage::detail
