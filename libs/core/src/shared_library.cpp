#include <mercado/core/shared_library.hpp>

#include <dlfcn.h>

namespace mercado::core {

Result<SharedLibrary> SharedLibrary::open(const std::string& soname) {
  // RTLD_LOCAL: its symbols do not leak into the global namespace of later loads.
  void* handle = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    Error e(Errc::unavailable, "cannot load " + soname + (why != nullptr ? std::string(": ") + why : std::string()));
    e.type = "library-unavailable";
    return fail(std::move(e));
  }
  return SharedLibrary(handle, soname);
}

Result<void*> SharedLibrary::address(const char* symbol) const {
  ::dlerror();
  void* p = ::dlsym(handle_, symbol);
  if (p == nullptr) {
    Error e(Errc::unavailable, soname_ + " has no symbol " + symbol);
    e.type = "library-unavailable";
    return fail(std::move(e));
  }
  return p;
}

}  // namespace mercado::core
