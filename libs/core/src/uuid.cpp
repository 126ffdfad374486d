#include <mercado/core/uuid.hpp>

#include <chrono>
#include <cstdint>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace mercado::core {

std::string new_uuid() {
  thread_local boost::uuids::random_generator generator;
  boost::uuids::uuid id = generator();
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  for (int i = 0; i < 6; ++i) id.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  id.data[6] = static_cast<std::uint8_t>(0x70 | (id.data[6] & 0x0F));  // version 7
  id.data[8] = static_cast<std::uint8_t>(0x80 | (id.data[8] & 0x3F));  // variant 10 (RFC 9562)
  return boost::uuids::to_string(id);
}

}  // namespace mercado::core
