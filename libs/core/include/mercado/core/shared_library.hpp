#pragma once
// A shared library loaded at run time (dlopen) and its symbols (dlsym). Backends whose
// client libraries are large and only sometimes used (libpq, rabbitmq-c, and what they pull
// in: OpenSSL, GnuTLS, Kerberos, LDAP) are loaded this way when first needed, so that a
// process that never talks to PostgreSQL or RabbitMQ never maps them.
//
//   auto lib = core::SharedLibrary::open("libpq.so.5");
//   if (!lib) return fail(std::move(lib.error()));            // unavailable, names the file
//   decltype(&PQstatus) status = nullptr;
//   if (auto r = lib->bind("PQstatus", status); !r) ...        // unavailable, names the symbol
//
// The library stays loaded for the life of the process (its functions may be called from
// anywhere; nothing here unloads it).

#include <mutex>
#include <string>

#include <mercado/core/error.hpp>

namespace mercado::core {

class SharedLibrary {
 public:
  // Loads `soname` (searched as the dynamic linker does). Errc::unavailable when it cannot.
  static Result<SharedLibrary> open(const std::string& soname);

  // Looks up a function or object; Errc::unavailable when the library lacks it.
  template <class T>
  Result<void> bind(const char* symbol, T*& out) const {
    auto p = address(symbol);
    if (!p) return fail(std::move(p.error()));
    out = reinterpret_cast<T*>(*p);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): dlsym's contract
    return {};
  }

  const std::string& soname() const noexcept { return soname_; }

  // Loads `soname` once per process and fills the function table `Api` with `bind_all`;
  // every call returns that table, or the error of the one attempt (thread-safe).
  template <class Api>
  static const Result<const Api*>& load_once(const char* soname,
                                             Result<void> (*bind_all)(const SharedLibrary&, Api&)) {
    static std::once_flag once;
    static Api api;
    static Result<const Api*> result = fail(Errc::unavailable, std::string(soname) + " not loaded");
    std::call_once(once, [&] {
      auto lib = open(soname);
      if (!lib) {
        result = fail(std::move(lib.error()));
        return;
      }
      if (auto r = bind_all(*lib, api); !r) {
        result = fail(std::move(r.error()));
        return;
      }
      result = &api;
    });
    return result;
  }

 private:
  SharedLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  Result<void*> address(const char* symbol) const;

  void* handle_;
  std::string soname_;
};

}  // namespace mercado::core
