#pragma once
// An encoded message as transports carry it, and the Publisher interface the outbox relay
// publishes through (so that tests can inject failures around it).

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/error.hpp>
#include <mercado/messaging/envelope.hpp>

namespace mercado::messaging {

struct Message {
  std::string id;           // the envelope id (AMQP message-id)
  std::string event_type;   // routing key (AMQP type)
  std::string traceparent;  // also sent as an AMQP header
  std::string body;         // the encoded envelope
};

Message to_message(const Envelope& e);

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Publishes `messages` in order. Completes successfully once every message has been
  // durably accepted by the transport (SQLite: committed; RabbitMQ: confirmed by the broker
  // after persisting). A message no queue is bound for is dropped, as AMQP does. On an
  // error none, some or all may have been accepted: callers that must deliver retry, and
  // consumers deduplicate by message id (at-least-once). Thread-safe.
  virtual boost::asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) = 0;

  // Two-phase publishing, for a caller that can wait for durability later and in bulk (the
  // outbox relay): publish_batch_deferred completes once the transport has accepted the
  // messages -- consumers may already receive them -- but they may not survive a power
  // loss until a later make_durable() has completed successfully. Until then the caller
  // must keep whatever lets it publish them again. Transports whose publishes are durable
  // when accepted (RabbitMQ with confirms) keep these defaults. Thread-safe.
  virtual boost::asio::awaitable<Result<void>> publish_batch_deferred(std::vector<Message> messages) {
    return publish_batch(std::move(messages));  // (no coroutine frame of its own)
  }
  // Makes every message this publisher accepted so far durable.
  virtual boost::asio::awaitable<Result<void>> make_durable() { co_return Result<void>{}; }
};

}  // namespace mercado::messaging
