#include "libpq.hpp"

#include <mutex>

#include <mercado/core/shared_library.hpp>

namespace mercado::storage::detail {

namespace {

LibPq g_api;
const LibPq* g_loaded = nullptr;

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

Result<const LibPq*> load_libpq() {
  static std::once_flag once;
  static Result<const LibPq*> result = fail(Errc::unavailable, "libpq not loaded");
  std::call_once(once, [] {
    auto lib = core::SharedLibrary::open(MERCADO_LIBPQ_SONAME);
    if (!lib) {
      result = fail(std::move(lib.error()));
      return;
    }
    if (auto r = bind_all(*lib, g_api); !r) {
      result = fail(std::move(r.error()));
      return;
    }
    g_loaded = &g_api;
    result = g_loaded;
  });
  return result;
}

const LibPq& pq() noexcept { return *g_loaded; }

}  // namespace mercado::storage::detail
