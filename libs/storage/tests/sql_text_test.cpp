#include "sql_text.hpp"

#include <gtest/gtest.h>

namespace mercado::storage::detail {
namespace {

TEST(DollarToQuestion, RewritesNumberedPlaceholders) {
  EXPECT_EQ(dollar_to_question("SELECT $2, $1 FROM t WHERE a = $10"), "SELECT ?2, ?1 FROM t WHERE a = ?10");
}

TEST(DollarToQuestion, LeavesLiteralsIdentifiersAndCommentsAlone) {
  EXPECT_EQ(dollar_to_question("SELECT '$1', \"$2\", 'it''s $3' -- $4\n, $5 /* $6 */"),
            "SELECT '$1', \"$2\", 'it''s $3' -- $4\n, ?5 /* $6 */");
}

TEST(DollarToQuestion, LeavesOtherDollarsAlone) {
  EXPECT_EQ(dollar_to_question("SELECT $a, $"), "SELECT $a, $");
  EXPECT_EQ(dollar_to_question("SELECT 'unterminated $1"), "SELECT 'unterminated $1");
}

}  // namespace
}  // namespace mercado::storage::detail
