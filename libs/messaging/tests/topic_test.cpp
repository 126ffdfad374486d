#include <mercado/messaging/topic.hpp>

#include <gtest/gtest.h>

namespace mercado::messaging {
namespace {

TEST(TopicMatches, FollowsAmqpTopicExchangeRules) {
  EXPECT_TRUE(topic_matches("OrderCreated", "OrderCreated"));
  EXPECT_FALSE(topic_matches("OrderCreated", "OrderCancelled"));
  EXPECT_TRUE(topic_matches("order.*", "order.created"));
  EXPECT_FALSE(topic_matches("order.*", "order.created.v2"));
  EXPECT_FALSE(topic_matches("order.*", "order"));
  EXPECT_TRUE(topic_matches("order.#", "order"));
  EXPECT_TRUE(topic_matches("order.#", "order.created.v2"));
  EXPECT_TRUE(topic_matches("#", "anything.at.all"));
  EXPECT_TRUE(topic_matches("*.created", "order.created"));
  EXPECT_FALSE(topic_matches("*.created", "order.cancelled"));
  EXPECT_TRUE(topic_matches("#.created", "a.b.created"));
  EXPECT_TRUE(topic_matches("a.#.z", "a.z"));
  EXPECT_TRUE(topic_matches("a.#.z", "a.b.c.z"));
  EXPECT_FALSE(topic_matches("a.#.z", "a.b.c"));
}

}  // namespace
}  // namespace mercado::messaging
