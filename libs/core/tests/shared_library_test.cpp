#include <mercado/core/shared_library.hpp>

#include <cstring>

#include <gtest/gtest.h>

namespace mercado::core {
namespace {

TEST(SharedLibrary, LoadsALibraryAndCallsAFunctionItExports) {
  auto lib = SharedLibrary::open("libc.so.6");
  ASSERT_TRUE(lib) << lib.error().message;
  decltype(&std::strlen) len = nullptr;
  ASSERT_TRUE(lib->bind("strlen", len));
  ASSERT_NE(len, nullptr);
  EXPECT_EQ(len("mercado"), 7U);
}

TEST(SharedLibrary, AMissingLibraryIsUnavailableAndNamed) {
  auto lib = SharedLibrary::open("libmercado-does-not-exist.so.1");
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.error().code, Errc::unavailable);
  EXPECT_NE(lib.error().message.find("libmercado-does-not-exist.so.1"), std::string::npos);
}

TEST(SharedLibrary, AMissingSymbolIsUnavailableAndNamed) {
  auto lib = SharedLibrary::open("libc.so.6");
  ASSERT_TRUE(lib);
  void (*f)() = nullptr;
  auto r = lib->bind("mercado_no_such_function", f);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("mercado_no_such_function"), std::string::npos);
  EXPECT_EQ(f, nullptr);
}

}  // namespace
}  // namespace mercado::core
