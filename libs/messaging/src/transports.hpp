#pragma once
// The transports behind open_event_bus().

#include <memory>
#include <string_view>

#include <mercado/messaging/event_bus.hpp>
#include <mercado/storage/database_url.hpp>

namespace mercado::messaging::detail {

Result<std::shared_ptr<EventBus>> open_sqlite_bus(const storage::DatabaseUrl& url, BusOptions options);
Result<std::shared_ptr<EventBus>> open_amqp_bus(std::string_view url, BusOptions options);

}  // namespace mercado::messaging::detail
