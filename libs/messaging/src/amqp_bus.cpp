// The RabbitMQ transport (rabbitmq-c). Design (docs/messaging.md):
// - Every AMQP connection is owned by one thread of its own (a ConnectionActor): rabbitmq-c
//   connections are not thread-safe and must keep reading to see confirms, deliveries and
//   heartbeats, so the thread waits in poll() on the socket and an eventfd through which the
//   io threads hand it work (publish requests, settlements). Io threads never call
//   rabbitmq-c. On any connection failure the actor reconnects with exponential backoff and
//   jitter and declares its topology again.
// - Publishing: one publisher connection per bus, channel in confirm mode, messages
//   persistent. Concurrent publish calls are pipelined on it; each completes when the broker
//   has confirmed all of its messages. Unconfirmed messages are published again after a
//   reconnect (at-least-once) until the request's deadline.
// - Consuming: one connection per subscription: topic exchange, the queue with a dead-letter
//   exchange "<exchange>.dlx" (routing key = queue) and "<queue>.dlq" bound to it, and a
//   retry queue "<queue>.retry" whose per-message TTL dead-letters back into the queue.
//   Handlers run as coroutines on the subscription's executor; their outcomes come back to
//   the actor: ack -> basic.ack; retry -> a copy to the retry queue with the delay as TTL,
//   then ack; dead letter -> a copy to the dead-letter exchange carrying the reason, then
//   ack (if the broker refuses the copy: basic.nack without requeue, so the queue's
//   dead-letter exchange still keeps the message). Copies go through a confirm channel and
//   the original is acked only after the copy is confirmed.
// - Delivery counting: the header x-mercado-deliveries counts earlier deliveries. A message
//   the broker redelivers (its consumer died, or the broker restarted) is first republished
//   with the count increased, then acked, so a message that crashes its consumers reaches
//   max_deliveries and is dead-lettered instead of looping forever.

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <mercado/core/notifier.hpp>
#include <mercado/observability/log.hpp>

#include "amqp_connection.hpp"
#include "callback.hpp"
#include "dispatcher.hpp"
#include "transports.hpp"

namespace mercado::messaging::detail {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr amqp_channel_t kMainChannel = 1;
constexpr amqp_channel_t kCopyChannel = 2;
constexpr std::string_view kDeliveriesHeader = "x-mercado-deliveries";
constexpr std::string_view kReasonHeader = "x-mercado-reason";
constexpr std::string_view kQueueHeader = "x-mercado-queue";
constexpr std::string_view kTraceHeader = "traceparent";
constexpr milliseconds kConnectTimeout{5000};
constexpr milliseconds kDrainTimeout{3000};

Error unavailable(std::string message, std::string internal = {}) {
  Error e(Errc::unavailable, std::move(message));
  e.internal = std::move(internal);
  return e;
}

amqp_bytes_t bytes(std::string_view s) noexcept { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }

// Persistent JSON message properties; `headers` must outlive the returned value.
amqp_basic_properties_t message_properties(std::string_view id, std::string_view type, std::string_view source,
                                           TableBuilder& headers) {
  amqp_basic_properties_t p{};
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
             AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
  p.content_type = rmq().amqp_cstring_bytes("application/json");
  p.delivery_mode = 2;  // persistent
  p.message_id = bytes(id);
  p.type = bytes(type);
  p.headers = headers.table();
  p.timestamp = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (!source.empty()) {
    p._flags |= AMQP_BASIC_APP_ID_FLAG;
    p.app_id = bytes(source);
  }
  return p;
}

// The thread that owns one AMQP connection (see the file comment).
class ConnectionActor {
 public:
  ConnectionActor(AmqpUrl url, std::shared_ptr<const BusOptions> options, std::string name)
      : url_(std::move(url)), options_(std::move(options)), name_(std::move(name)) {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    reconnects_ = &options_->metrics->counter("mercado_bus_reconnects_total", "Broker connections re-established",
                                             {"connection"}).with({name_});
  }
  virtual ~ConnectionActor() {
    if (thread_.joinable()) std::terminate();  // owners call stop() first (a bug otherwise)
    ::close(efd_);
  }
  ConnectionActor(const ConnectionActor&) = delete;
  ConnectionActor& operator=(const ConnectionActor&) = delete;

  void start() { thread_ = std::thread([this] { run(); }); }

  // Runs `fn` on the actor thread. Thread-safe.
  void post(std::function<void()> fn) {
    bool was_empty = false;
    {
      std::lock_guard lock(mutex_);
      was_empty = commands_.empty();
      commands_.push_back(std::move(fn));
    }
    // The thread reads the eventfd before it takes the whole queue, so one wake-up per
    // batch of commands is enough.
    if (was_empty) wake();
  }

  // Asks the thread to finish (after running queued commands and draining confirms) and
  // waits for it. Blocking: call from a pool worker, not an io thread. Idempotent.
  void stop() {
    stop_requested_ = true;
    wake();
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  bool connected() const noexcept { return connected_.load(); }

 protected:
  // On the actor thread. An error drops the connection (then reconnect).
  virtual Result<void> on_connected(AmqpConnection& c) = 0;
  virtual Result<void> on_frame(AmqpConnection& c, const amqp_frame_t& f) = 0;
  virtual Result<void> on_turn(AmqpConnection* c) = 0;  // each loop turn, c == nullptr when disconnected
  virtual void on_disconnected(const Error& why) = 0;
  virtual bool has_unconfirmed() const = 0;  // stop() waits for these (bounded)
  virtual void on_exit() = 0;                // the thread ends: complete whatever is pending
  virtual std::optional<SteadyClock::time_point> next_deadline() const { return std::nullopt; }

  std::uint64_t generation() const noexcept { return generation_; }
  AmqpConnection* connection() noexcept { return conn_.get(); }
  const BusOptions& options() const noexcept { return *options_; }
  const std::string& name() const noexcept { return name_; }

 private:
  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
  }

  void run_commands() {
    std::uint64_t v;
    [[maybe_unused]] auto n = ::read(efd_, &v, sizeof v);
    std::deque<std::function<void()>> cmds;
    {
      std::lock_guard lock(mutex_);
      cmds.swap(commands_);
    }
    for (auto& c : cmds) c();
  }

  void drop(const Error& e) {
    if (conn_) conn_->mark_broken();
    conn_.reset();
    connected_ = false;
    log::warn("amqp connection lost", {{"connection", name_}, {"error", e.internal.empty() ? e.message : e.internal}});
    on_disconnected(e);
  }

  Result<void> read_frames() {
    while (conn_) {
      auto f = conn_->next_frame(milliseconds(0));
      if (!f) return std::unexpected(f.error());
      if (!*f) break;
      if (auto r = on_frame(*conn_, **f); !r) return r;
    }
    if (conn_) conn_->release_buffers();
    return {};
  }

  // Waits for the eventfd and (when connected) the socket, up to `timeout`.
  void wait(milliseconds timeout) {
    pollfd fds[2] = {{efd_, POLLIN, 0}, {conn_ ? conn_->fd() : -1, POLLIN, 0}};
    ::poll(fds, conn_ ? 2 : 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0)));
  }

  milliseconds turn_timeout() const {
    milliseconds t = std::chrono::duration_cast<milliseconds>(options_->heartbeat) / 2;
    if (t.count() <= 0) t = milliseconds(1000);
    if (auto d = next_deadline()) {
      t = std::min(t, std::chrono::duration_cast<milliseconds>(*d - SteadyClock::now()) + milliseconds(1));
    }
    return std::max(t, milliseconds(0));
  }

  void run() {
    std::mt19937 rng(std::random_device{}());
    milliseconds backoff = options_->reconnect_min;
    bool warned = false;
    while (!stop_requested_) {
      if (!conn_) {
        auto c = AmqpConnection::open(url_, options_->heartbeat, kConnectTimeout);
        Result<void> ready = c ? on_connected(**c) : Result<void>(std::unexpected(c.error()));
        if (ready) {
          conn_ = std::move(*c);
          connected_ = true;
          if (generation_++ > 0) reconnects_->inc();
          log::info("amqp connected", {{"connection", name_}, {"broker", url_.redacted}});
          backoff = options_->reconnect_min;
          warned = false;
        } else {
          if (c) (*c)->mark_broken();
          if (!warned) {
            log::warn("amqp connect failed, retrying",
                      {{"connection", name_}, {"error", ready.error().internal.empty() ? ready.error().message
                                                                                       : ready.error().internal}});
            warned = true;
          }
          on_disconnected(ready.error());
          std::uniform_int_distribution<std::int64_t> jitter(backoff.count() / 2, backoff.count());
          auto until = SteadyClock::now() + milliseconds(jitter(rng));
          while (!stop_requested_ && SteadyClock::now() < until) {
            wait(std::min(std::chrono::duration_cast<milliseconds>(until - SteadyClock::now()), turn_timeout()));
            run_commands();
            (void)on_turn(nullptr);
          }
          backoff = std::min(backoff * 2, options_->reconnect_max);
          continue;
        }
      }
      run_commands();
      if (auto r = on_turn(conn_.get()); !r) {
        drop(r.error());
        continue;
      }
      if (conn_->buffered()) {
        if (auto r = read_frames(); !r) drop(r.error());
        continue;
      }
      // run_commands() consumed the eventfd: a stop requested since must not wait a turn.
      if (stop_requested_) continue;
      wait(turn_timeout());
      // Even without data: lets rabbitmq-c send a due heartbeat and notice a silent peer.
      if (auto r = read_frames(); !r) drop(r.error());
    }
    run_commands();
    if (conn_) {
      (void)on_turn(conn_.get());
      auto until = SteadyClock::now() + kDrainTimeout;
      while (conn_ && has_unconfirmed() && SteadyClock::now() < until) {
        wait(milliseconds(50));
        if (auto r = read_frames(); !r) drop(r.error());
      }
    }
    connected_ = false;
    conn_.reset();
    on_exit();
  }

  AmqpUrl url_;
  std::shared_ptr<const BusOptions> options_;
  std::string name_;
  int efd_ = -1;
  obs::Counter* reconnects_ = nullptr;
  std::thread thread_;
  std::mutex join_mutex_;
  std::mutex mutex_;
  std::deque<std::function<void()>> commands_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> connected_{false};
  std::unique_ptr<AmqpConnection> conn_;  // actor thread only
  std::uint64_t generation_ = 0;          // actor thread only: connections made so far
};

// Publishes with confirms on one connection; completes each request when all of its
// messages are confirmed, republishing unconfirmed ones after a reconnect.
class PublisherActor final : public ConnectionActor {
 public:
  PublisherActor(AmqpUrl url, std::shared_ptr<const BusOptions> options)
      : ConnectionActor(std::move(url), options, "publisher") {
    published_ = &options->metrics->counter("mercado_messages_published_total",
                                           "Messages accepted by the transport, by transport and event type",
                                           {"transport", "event_type"});
  }
  ~PublisherActor() override { stop(); }

  void submit(std::vector<Message> messages, SteadyClock::time_point deadline, Completion<Result<void>> done) {
    auto req = std::make_shared<Request>();
    req->confirmed.assign(messages.size(), false);
    req->remaining = messages.size();
    req->messages = std::move(messages);
    req->deadline = deadline;
    req->done = std::move(done);
    post([this, req] { waiting_.push_back(req); });
  }

 private:
  struct Request {
    std::vector<Message> messages;
    std::vector<bool> confirmed;
    std::size_t remaining = 0;
    SteadyClock::time_point deadline;
    Completion<Result<void>> done;
    bool finished = false;
  };

  Result<void> on_connected(AmqpConnection& c) override {
    if (auto r = c.open_channel(kMainChannel); !r) return r;
    if (auto r = c.confirm_select(kMainChannel); !r) return r;
    if (auto r = c.declare_exchange(kMainChannel, options().exchange, "topic"); !r) return r;
    next_tag_ = 1;
    return {};
  }

  void finish(const std::shared_ptr<Request>& req, Result<void> r) {
    if (req->finished) return;
    req->finished = true;
    if (!r) std::erase_if(unconfirmed_, [&](const auto& kv) { return kv.second.first == req; });
    std::erase(inflight_, req);
    req->done(std::move(r));
  }

  Result<void> on_turn(AmqpConnection* c) override {
    auto now = SteadyClock::now();
    std::vector<std::shared_ptr<Request>> expired;
    for (const auto& r : waiting_) {
      if (r->deadline <= now) expired.push_back(r);
    }
    for (const auto& r : inflight_) {
      if (r->deadline <= now) expired.push_back(r);
    }
    for (const auto& r : expired) {
      std::erase(waiting_, r);
      finish(r, std::unexpected(unavailable("message broker unavailable",
                                            "publish not confirmed before its deadline: " + last_error_)));
    }
    if (!c) return {};
    while (!waiting_.empty()) {
      auto req = waiting_.front();
      waiting_.pop_front();
      inflight_.push_back(req);
      for (std::size_t i = 0; i < req->messages.size(); ++i) {
        if (req->confirmed[i]) continue;
        const Message& m = req->messages[i];
        TableBuilder headers;
        if (!m.traceparent.empty()) headers.add(std::string(kTraceHeader), m.traceparent);
        auto props = message_properties(m.id, m.event_type, options().source, headers);
        if (auto r = c->publish(kMainChannel, options().exchange, m.event_type, props, m.body); !r) return r;
        unconfirmed_[next_tag_++] = {req, i};
      }
      if (req->remaining == 0) finish(req, {});
    }
    return {};
  }

  Result<void> on_frame(AmqpConnection&, const amqp_frame_t& f) override {
    if (f.frame_type != AMQP_FRAME_METHOD) return {};
    switch (f.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
        confirm(a->delivery_tag, a->multiple != 0, true);
        return {};
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* n = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
        confirm(n->delivery_tag, n->multiple != 0, false);
        return {};
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return std::unexpected(unavailable("message broker unavailable", "publisher channel closed by the broker"));
      default: return {};
    }
  }

  void confirm(std::uint64_t tag, bool multiple, bool ok) {
    std::vector<std::pair<std::shared_ptr<Request>, std::size_t>> done;
    if (multiple) {
      auto end = unconfirmed_.upper_bound(tag);
      for (auto it = unconfirmed_.begin(); it != end; ++it) done.push_back(it->second);
      unconfirmed_.erase(unconfirmed_.begin(), end);
    } else if (auto it = unconfirmed_.find(tag); it != unconfirmed_.end()) {
      done.push_back(it->second);
      unconfirmed_.erase(it);
    }
    for (auto& [req, i] : done) {
      if (req->finished) continue;
      if (!ok) {
        finish(req, std::unexpected(unavailable("message broker refused the message", "basic.nack from the broker")));
        continue;
      }
      req->confirmed[i] = true;
      published_->with({"amqp", req->messages[i].event_type}).inc();
      if (--req->remaining == 0) finish(req, {});
    }
  }

  void on_disconnected(const Error& why) override {
    last_error_ = why.internal.empty() ? why.message : why.internal;
    unconfirmed_.clear();
    // Unconfirmed messages go out again on the next connection (at-least-once).
    for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) waiting_.push_front(*it);
    inflight_.clear();
  }

  bool has_unconfirmed() const override { return !unconfirmed_.empty(); }

  std::optional<SteadyClock::time_point> next_deadline() const override {
    std::optional<SteadyClock::time_point> d;
    for (const auto& r : waiting_) d = d ? std::min(*d, r->deadline) : r->deadline;
    for (const auto& r : inflight_) d = d ? std::min(*d, r->deadline) : r->deadline;
    return d;
  }

  void on_exit() override {
    auto all = inflight_;
    all.insert(all.end(), waiting_.begin(), waiting_.end());
    waiting_.clear();
    for (auto& r : all) finish(r, std::unexpected(unavailable("event bus closed")));
  }

  obs::CounterFamily* published_;
  // Actor thread only.
  std::deque<std::shared_ptr<Request>> waiting_;
  std::vector<std::shared_ptr<Request>> inflight_;
  std::map<std::uint64_t, std::pair<std::shared_ptr<Request>, std::size_t>> unconfirmed_;
  std::uint64_t next_tag_ = 1;
  std::string last_error_ = "not connected yet";
};

// A message received by a consumer, handed to the handler coroutines.
struct Incoming {
  std::uint64_t generation = 0;
  std::uint64_t tag = 0;
  int attempt = 1;
  AmqpContent content;
};

// What the consumer connection and the handler coroutines share.
struct DeliveryQueue {
  std::mutex mutex;
  std::deque<std::shared_ptr<Incoming>> items;
  core::Notifier arrived;
  void push(std::shared_ptr<Incoming> in) {
    bool was_empty = false;
    {
      std::lock_guard lock(mutex);
      was_empty = items.empty();
      items.push_back(std::move(in));
    }
    // The pump only waits once it has emptied the queue.
    if (was_empty) arrived.notify_all();
  }
  std::shared_ptr<Incoming> pop() {
    std::lock_guard lock(mutex);
    if (items.empty()) return nullptr;
    auto in = std::move(items.front());
    items.pop_front();
    return in;
  }
};

class ConsumerActor final : public ConnectionActor {
 public:
  struct Config {
    std::string queue;
    std::vector<std::string> patterns;
    std::uint16_t prefetch = 8;
    int max_deliveries = 5;
  };

  ConsumerActor(AmqpUrl url, std::shared_ptr<const BusOptions> options, Config config,
                std::shared_ptr<DeliveryQueue> queue,
                Completion<Result<void>> first_ready, SteadyClock::time_point ready_deadline)
      : ConnectionActor(std::move(url), std::move(options), "consumer " + config.queue),
        config_(std::move(config)),
        queue_(std::move(queue)),
        first_ready_(std::move(first_ready)),
        ready_deadline_(ready_deadline) {}
  ~ConsumerActor() override { stop(); }

  // From a handler coroutine: applies an outcome (see the file comment). Thread-safe.
  void settle(std::shared_ptr<Incoming> in, Outcome outcome, milliseconds delay) {
    post([this, in = std::move(in), outcome = std::move(outcome), delay] { apply(*in, outcome, delay); });
  }

 private:
  Result<void> on_connected(AmqpConnection& c) override {
    const std::string dlx = options().exchange + ".dlx";
    const std::string& q = config_.queue;
    if (auto r = c.open_channel(kMainChannel); !r) return r;
    if (auto r = c.qos(kMainChannel, config_.prefetch); !r) return r;
    if (auto r = c.declare_exchange(kMainChannel, options().exchange, "topic"); !r) return r;
    if (auto r = c.declare_exchange(kMainChannel, dlx, "direct"); !r) return r;
    TableBuilder main_args;
    main_args.add("x-dead-letter-exchange", dlx).add("x-dead-letter-routing-key", q);
    if (auto r = c.declare_queue(kMainChannel, q, main_args.table()); !r) return r;
    if (auto r = c.declare_queue(kMainChannel, q + ".dlq", kEmptyTable); !r) return r;
    if (auto r = c.bind_queue(kMainChannel, q + ".dlq", dlx, q); !r) return r;
    TableBuilder retry_args;
    retry_args.add("x-dead-letter-exchange", "").add("x-dead-letter-routing-key", q);
    if (auto r = c.declare_queue(kMainChannel, q + ".retry", retry_args.table()); !r) return r;
    for (const auto& p : config_.patterns) {
      if (auto r = c.bind_queue(kMainChannel, q, options().exchange, p); !r) return r;
    }
    if (auto r = c.open_channel(kCopyChannel); !r) return r;
    if (auto r = c.confirm_select(kCopyChannel); !r) return r;
    if (auto r = c.consume(kMainChannel, q); !r) return r;
    next_copy_tag_ = 1;
    if (first_ready_) {
      first_ready_(Result<void>{});
      first_ready_ = nullptr;
    }
    return {};
  }

  // Publishes a copy of `in` (same id, type, trace, body) and acks the original once the
  // broker has confirmed the copy.
  Result<void> copy_then_ack(AmqpConnection& c, const Incoming& in, std::string_view exchange,
                             std::string_view routing_key, int deliveries, std::string_view reason,
                             std::optional<milliseconds> ttl) {
    TableBuilder headers;
    headers.add(std::string(kDeliveriesHeader), static_cast<std::int64_t>(deliveries));
    if (auto it = in.content.string_headers.find(kTraceHeader); it != in.content.string_headers.end()) {
      headers.add(std::string(kTraceHeader), it->second);
    }
    if (!reason.empty()) {
      headers.add(std::string(kReasonHeader), std::string(reason));
      headers.add(std::string(kQueueHeader), config_.queue);
    }
    auto props = message_properties(in.content.message_id, in.content.type, {}, headers);
    std::string expiration;
    if (ttl) {
      expiration = std::to_string(std::max<std::int64_t>(ttl->count(), 0));
      props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
      props.expiration = bytes(expiration);
    }
    if (auto r = c.publish(kCopyChannel, exchange, routing_key, props, in.content.body); !r) return r;
    pending_copies_[next_copy_tag_++] = in.tag;
    return {};
  }

  void apply(const Incoming& in, const Outcome& outcome, milliseconds delay) {
    AmqpConnection* c = connection();
    // A delivery of an earlier connection: the broker has requeued it already.
    if (!c || in.generation != generation()) return;
    Result<void> r;
    switch (outcome.disposition) {
      case Disposition::ack: r = c->ack(kMainChannel, in.tag); break;
      case Disposition::retry:
        r = delay.count() <= 0
                ? copy_then_ack(*c, in, "", config_.queue, in.attempt, {}, std::nullopt)
                : copy_then_ack(*c, in, "", config_.queue + ".retry", in.attempt, {}, delay);
        break;
      case Disposition::dead_letter:
        r = copy_then_ack(*c, in, options().exchange + ".dlx", config_.queue, in.attempt, outcome.reason, std::nullopt);
        break;
    }
    if (!r) failed_ = r.error();
  }

  Result<void> on_turn(AmqpConnection*) override {
    if (failed_) {
      Error e = std::move(*failed_);
      failed_.reset();
      return std::unexpected(std::move(e));
    }
    return {};
  }

  Result<void> on_frame(AmqpConnection& c, const amqp_frame_t& f) override {
    if (f.frame_type != AMQP_FRAME_METHOD) return {};
    switch (f.payload.method.id) {
      case AMQP_BASIC_DELIVER_METHOD: {
        auto* d = static_cast<amqp_basic_deliver_t*>(f.payload.method.decoded);
        std::uint64_t tag = d->delivery_tag;
        bool redelivered = d->redelivered != 0;
        auto content = c.read_content(f.channel);
        if (!content) return std::unexpected(content.error());
        auto in = std::make_shared<Incoming>();
        in->generation = generation();
        in->tag = tag;
        int prior = 0;
        if (auto it = content->int_headers.find(kDeliveriesHeader); it != content->int_headers.end()) {
          prior = static_cast<int>(it->second);
        }
        in->content = std::move(*content);
        if (redelivered) {
          // Its consumer died with it (or the broker restarted): count that delivery durably.
          in->attempt = prior + 1;
          if (in->attempt >= config_.max_deliveries) {
            std::string reason = "delivery limit reached: delivered " + std::to_string(in->attempt) +
                                 " times without being settled (consumer crashed or timed out)";
            log::warn("message dead-lettered", {{"queue", config_.queue}, {"message_id", in->content.message_id},
                                                {"reason", reason}});
            return copy_then_ack(c, *in, options().exchange + ".dlx", config_.queue, in->attempt, reason, std::nullopt);
          }
          return copy_then_ack(c, *in, "", config_.queue, in->attempt, {}, std::nullopt);
        }
        in->attempt = prior + 1;
        queue_->push(std::move(in));
        return {};
      }
      case AMQP_BASIC_ACK_METHOD:
      case AMQP_BASIC_NACK_METHOD: {
        if (f.channel != kCopyChannel) return {};
        bool ok = f.payload.method.id == AMQP_BASIC_ACK_METHOD;
        std::uint64_t tag = ok ? static_cast<amqp_basic_ack_t*>(f.payload.method.decoded)->delivery_tag
                               : static_cast<amqp_basic_nack_t*>(f.payload.method.decoded)->delivery_tag;
        bool multiple = ok ? static_cast<amqp_basic_ack_t*>(f.payload.method.decoded)->multiple != 0
                           : static_cast<amqp_basic_nack_t*>(f.payload.method.decoded)->multiple != 0;
        std::vector<std::uint64_t> originals;
        if (multiple) {
          auto end = pending_copies_.upper_bound(tag);
          for (auto it = pending_copies_.begin(); it != end; ++it) originals.push_back(it->second);
          pending_copies_.erase(pending_copies_.begin(), end);
        } else if (auto it = pending_copies_.find(tag); it != pending_copies_.end()) {
          originals.push_back(it->second);
          pending_copies_.erase(it);
        }
        for (std::uint64_t original : originals) {
          // Copy kept: ack the original. Copy refused: nack without requeue, so the queue's
          // dead-letter exchange keeps the message.
          auto r = ok ? c.ack(kMainChannel, original) : c.nack(kMainChannel, original, false);
          if (!r) return r;
        }
        return {};
      }
      case AMQP_BASIC_CANCEL_METHOD:
        return std::unexpected(unavailable("message broker unavailable", "consumer cancelled by the broker"));
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return std::unexpected(unavailable("message broker unavailable", "consumer channel closed by the broker"));
      default: return {};
    }
  }

  void on_disconnected(const Error& why) override {
    pending_copies_.clear();  // their originals are requeued by the broker
    failed_.reset();
    if (first_ready_ && SteadyClock::now() >= ready_deadline_) {
      first_ready_(std::unexpected(why));
      first_ready_ = nullptr;
    }
  }

  bool has_unconfirmed() const override { return !pending_copies_.empty(); }

  std::optional<SteadyClock::time_point> next_deadline() const override {
    if (first_ready_) return ready_deadline_;
    return std::nullopt;
  }

  void on_exit() override {
    if (first_ready_) {
      first_ready_(std::unexpected(unavailable("event bus closed")));
      first_ready_ = nullptr;
    }
  }

  Config config_;
  std::shared_ptr<DeliveryQueue> queue_;
  Completion<Result<void>> first_ready_;
  SteadyClock::time_point ready_deadline_;
  // Actor thread only.
  std::map<std::uint64_t, std::uint64_t> pending_copies_;  // copy tag -> original tag
  std::uint64_t next_copy_tag_ = 1;
  std::optional<Error> failed_;
};

class AmqpSubscription final : public Subscription, public std::enable_shared_from_this<AmqpSubscription> {
 public:
  AmqpSubscription(std::shared_ptr<const BusOptions> bus_options, SubscribeOptions options)
      : bus_options_(bus_options),
        dispatcher_(std::move(options), "amqp", *bus_options->metrics),
        queue_(std::make_shared<DeliveryQueue>()) {}

  const std::string& queue() const noexcept override { return dispatcher_.options().queue; }

  // Connects and declares; returns once the queue is bound (or fails after the timeout).
  asio::awaitable<Result<void>> open(const AmqpUrl& url) {
    const auto& o = dispatcher_.options();
    ConsumerActor::Config config{o.queue, o.event_types,
                                 static_cast<std::uint16_t>(std::min<std::size_t>(dispatcher_.prefetch(), 65535)),
                                 o.max_deliveries};
    auto deadline = SteadyClock::now() + bus_options_->publish_timeout;
    auto ready = co_await await_callback<Result<void>>([&](Completion<Result<void>> done) {
      actor_ = std::make_unique<ConsumerActor>(url, bus_options_, std::move(config), queue_, std::move(done), deadline);
      actor_->start();
    });
    if (!ready) {
      co_await stop_actor();
      co_return ready;
    }
    auto ex = o.executor ? o.executor : bus_options_->executor;
    asio::co_spawn(ex, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->pump(); },
                   asio::detached);
    co_return Result<void>{};
  }

  asio::awaitable<void> stop() override {
    stopping_ = true;
    queue_->arrived.notify_all();
    slot_freed_.notify_all();
    while (true) {
      auto seen = done_.generation();
      if (pumped_out_) break;
      co_await done_.wait(seen, std::chrono::hours(1));
    }
    co_await stop_actor();
  }

 private:
  // One coroutine takes deliveries and starts a handler for each, at most `concurrency` at
  // once (a delivery wakes only this pump, never every idle handler).
  asio::awaitable<void> pump() {
    auto ex = co_await asio::this_coro::executor;
    const std::size_t limit = dispatcher_.options().concurrency;
    while (!stopping_) {
      auto seen = queue_->arrived.generation();
      auto in = queue_->pop();
      if (!in) {
        co_await queue_->arrived.wait(seen, std::chrono::hours(1));
        continue;
      }
      while (running_.load() >= limit && !stopping_) {
        auto slot_seen = slot_freed_.generation();
        if (running_.load() < limit) break;
        co_await slot_freed_.wait(slot_seen, std::chrono::hours(1));
      }
      if (stopping_) break;  // not started: the broker requeues it when the connection closes
      ++running_;
      asio::co_spawn(ex, handle(shared_from_this(), std::move(in)), asio::detached);
    }
    while (true) {  // let running handlers finish and hand over their outcomes
      auto slot_seen = slot_freed_.generation();
      if (running_.load() == 0) break;
      co_await slot_freed_.wait(slot_seen, std::chrono::hours(1));
    }
    pumped_out_ = true;
    done_.notify_all();
  }

  static asio::awaitable<void> handle(std::shared_ptr<AmqpSubscription> self, std::shared_ptr<Incoming> in) {
    auto d = co_await self->dispatcher_.dispatch(in->content.body, in->attempt);
    auto delay = self->dispatcher_.retry_delay(d.outcome);
    self->actor_->settle(std::move(in), std::move(d.outcome), delay);
    // The pump waits only when all slots are taken, or for the last handler when stopping.
    std::size_t before = self->running_--;
    if (before == self->dispatcher_.options().concurrency || before == 1) self->slot_freed_.notify_all();
  }

  asio::awaitable<void> stop_actor() {
    if (!actor_) co_return;
    // Joining the actor thread blocks briefly: do it on a pool worker.
    auto* actor = actor_.get();
    auto stop_actor = [actor] { actor->stop(); };  // named: GCC 12 destroys a capturing lambda operand twice
    co_await bus_options_->pool->run(std::move(stop_actor));
  }

  std::shared_ptr<const BusOptions> bus_options_;
  Dispatcher dispatcher_;
  std::shared_ptr<DeliveryQueue> queue_;
  std::unique_ptr<ConsumerActor> actor_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> running_{0};  // handlers running now
  std::atomic<bool> pumped_out_{false};
  core::Notifier slot_freed_;
  core::Notifier done_;
};

class AmqpBus final : public EventBus {
 public:
  AmqpBus(AmqpUrl url, BusOptions options)
      : EventBus(options.source, *options.clock),
        url_(std::move(url)),
        options_(std::make_shared<const BusOptions>(std::move(options))),
        publisher_(std::make_unique<PublisherActor>(url_, options_)) {
    publisher_->start();
  }
  ~AmqpBus() override {
    // Subscriptions must have been stopped (close()); the publisher thread is joined here.
    publisher_->stop();
  }

  std::string_view transport() const noexcept override { return "amqp"; }
  bool healthy() const noexcept override { return !closed_ && publisher_->connected(); }

  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    if (closed_) co_return fail(Errc::unavailable, "event bus closed");
    if (messages.empty()) co_return Result<void>{};
    auto deadline = SteadyClock::now() + options_->publish_timeout;
    co_return co_await await_callback<Result<void>>([&](Completion<Result<void>> done) {
      publisher_->submit(std::move(messages), deadline, std::move(done));
    });
  }

  asio::awaitable<Result<std::shared_ptr<Subscription>>> subscribe(SubscribeOptions options) override {
    if (auto v = Dispatcher::validate(options); !v) co_return std::unexpected(v.error());
    if (closed_) co_return fail(Errc::unavailable, "event bus closed");
    auto sub = std::make_shared<AmqpSubscription>(options_, std::move(options));
    auto r = co_await sub->open(url_);
    if (!r) co_return std::unexpected(r.error());
    {
      std::lock_guard lock(mutex_);
      subscriptions_.push_back(sub);
    }
    co_return std::shared_ptr<Subscription>(sub);
  }

  asio::awaitable<Result<std::vector<DeadLetter>>> take_dead_letters(std::string queue, std::size_t max) override {
    const AmqpUrl& url = url_;
    const BusOptions& o = *options_;
    co_return co_await options_->pool->run([&]() -> Result<std::vector<DeadLetter>> {
      auto c = AmqpConnection::open(url, o.heartbeat, kConnectTimeout);
      if (!c) return std::unexpected(c.error());
      if (auto r = (*c)->open_channel(kMainChannel); !r) return std::unexpected(r.error());
      const std::string dlq = queue + ".dlq";
      if (auto r = (*c)->declare_queue(kMainChannel, dlq, kEmptyTable); !r) return std::unexpected(r.error());
      std::vector<DeadLetter> out;
      while (out.size() < max) {
        auto got = (*c)->get(kMainChannel, dlq);
        if (!got) return std::unexpected(got.error());
        if (!*got) break;
        auto& [tag, content] = **got;
        DeadLetter l;
        l.queue = queue;
        l.message_id = content.message_id;
        l.event_type = content.type;
        l.body = content.body;
        if (auto it = content.string_headers.find(kReasonHeader); it != content.string_headers.end()) {
          l.reason = it->second;
        } else {
          l.reason = "rejected by a consumer or the broker (no reason recorded)";
        }
        if (auto it = content.int_headers.find(kDeliveriesHeader); it != content.int_headers.end()) {
          l.deliveries = static_cast<int>(it->second);
        }
        if (auto r = (*c)->ack(kMainChannel, tag); !r) return std::unexpected(r.error());
        out.push_back(std::move(l));
      }
      return out;
    });
  }

  asio::awaitable<Result<void>> delete_queue(std::string queue) override {
    const AmqpUrl& url = url_;
    const BusOptions& o = *options_;
    co_return co_await options_->pool->run([&]() -> Result<void> {
      auto c = AmqpConnection::open(url, o.heartbeat, kConnectTimeout);
      if (!c) return std::unexpected(c.error());
      if (auto r = (*c)->open_channel(kMainChannel); !r) return std::unexpected(r.error());
      // The queue and the two the subscription declared with it (deleting a missing queue
      // is not an error in AMQP 0-9-1).
      for (const std::string& q : {queue, queue + ".retry", queue + ".dlq"}) {
        if (auto r = (*c)->delete_queue(kMainChannel, q); !r) return std::unexpected(r.error());
      }
      return {};
    });
  }

  asio::awaitable<void> close() override {
    closed_ = true;
    std::vector<std::shared_ptr<AmqpSubscription>> subs;
    {
      std::lock_guard lock(mutex_);
      subs.swap(subscriptions_);
    }
    for (auto& s : subs) co_await s->stop();
    auto* publisher = publisher_.get();
    auto stop_publisher = [publisher] { publisher->stop(); };  // named: see scripts/lint-coroutines.py
    co_await options_->pool->run(std::move(stop_publisher));
  }

 private:
  AmqpUrl url_;
  std::shared_ptr<const BusOptions> options_;  // shared with the actors and subscriptions
  std::unique_ptr<PublisherActor> publisher_;
  std::atomic<bool> closed_{false};
  std::mutex mutex_;
  std::vector<std::shared_ptr<AmqpSubscription>> subscriptions_;
};

}  // namespace

Result<std::shared_ptr<EventBus>> open_amqp_bus(std::string_view url, BusOptions options) {
  auto parsed = parse_amqp_url(url);
  if (!parsed) return std::unexpected(parsed.error());
  return std::shared_ptr<EventBus>(std::make_shared<AmqpBus>(std::move(*parsed), std::move(options)));
}

}  // namespace mercado::messaging::detail
