#include "libpq.hpp"

#include <mercado/core/shared_library.hpp>

namespace mercado::storage::detail {

namespace {

Result<void> bind_all(const core::SharedLibrary& lib, LibPq& api) {
  Result<void> r;
  if (r = lib.bind("PQclear", api.PQclear); !r) return r;
  if (r = lib.bind("PQcmdStatus", api.PQcmdStatus); !r) return r;
  if (r = lib.bind("PQcmdTuples", api.PQcmdTuples); !r) return r;
  if (r = lib.bind("PQconnectdbParams", api.PQconnectdbParams); !r) return r;
  if (r = lib.bind("PQdescribePrepared", api.PQdescribePrepared); !r) return r;
  if (r = lib.bind("PQerrorMessage", api.PQerrorMessage); !r) return r;
  if (r = lib.bind("PQexec", api.PQexec); !r) return r;
  if (r = lib.bind("PQexecPrepared", api.PQexecPrepared); !r) return r;
  if (r = lib.bind("PQfinish", api.PQfinish); !r) return r;
  if (r = lib.bind("PQfname", api.PQfname); !r) return r;
  if (r = lib.bind("PQftype", api.PQftype); !r) return r;
  if (r = lib.bind("PQgetisnull", api.PQgetisnull); !r) return r;
  if (r = lib.bind("PQgetlength", api.PQgetlength); !r) return r;
  if (r = lib.bind("PQgetvalue", api.PQgetvalue); !r) return r;
  if (r = lib.bind("PQnfields", api.PQnfields); !r) return r;
  if (r = lib.bind("PQnparams", api.PQnparams); !r) return r;
  if (r = lib.bind("PQntuples", api.PQntuples); !r) return r;
  if (r = lib.bind("PQprepare", api.PQprepare); !r) return r;
  if (r = lib.bind("PQresultErrorField", api.PQresultErrorField); !r) return r;
  if (r = lib.bind("PQresultErrorMessage", api.PQresultErrorMessage); !r) return r;
  if (r = lib.bind("PQresultStatus", api.PQresultStatus); !r) return r;
  if (r = lib.bind("PQsetNoticeProcessor", api.PQsetNoticeProcessor); !r) return r;
  if (r = lib.bind("PQstatus", api.PQstatus); !r) return r;
  return r;
}

}  // namespace

Result<const LibPq*> load_libpq() { return core::SharedLibrary::load_once<LibPq>(MERCADO_LIBPQ_SONAME, bind_all); }

const LibPq& pq() noexcept { return **core::SharedLibrary::load_once<LibPq>(MERCADO_LIBPQ_SONAME, bind_all); }

}  // namespace mercado::storage::detail
