// Boost assertions (BOOST_ENABLE_ASSERT_HANDLER is set for every Mercado target) throw
// instead of aborting, in every build type. Reason: Beast 1.81's HTTP parser has
// assertions that malformed, segmented input can reach (found by fuzz/http_request_fuzz:
// a bare LF after a final chunk split across reads). The parse sites catch
// BoostAssertion and answer 400 / report a protocol error; anywhere else it propagates like
// any broken invariant.
#include <boost/assert.hpp>

#include <string>

#include <mercado/core/boost_assertion.hpp>

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  throw mercado::core::BoostAssertion(std::string("Boost assertion failed: ") + expr + " in " + function + " (" +
                                      file + ":" + std::to_string(line) + ")");
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  throw mercado::core::BoostAssertion(std::string("Boost assertion failed: ") + expr + " (" + msg + ") in " +
                                      function + " (" + file + ":" + std::to_string(line) + ")");
}

}  // namespace boost
