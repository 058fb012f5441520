#include "crds/quantity.h"

#include <gtest/gtest.h>

namespace millrace::api {
namespace {

int64_t Milli(std::string_view s) {
  const auto q = Quantity::Parse(s);
  EXPECT_TRUE(q.has_value()) << s << ": " << (q ? "" : q.error());
  return q ? q->milli() : -42;
}

TEST(Quantity, ParsesKubernetesForms) {
  EXPECT_EQ(Milli("500m"), 500);
  EXPECT_EQ(Milli("2"), 2000);
  EXPECT_EQ(Milli("1.5"), 1500);
  EXPECT_EQ(Milli(".5"), 500);
  EXPECT_EQ(Milli("2."), 2000);
  EXPECT_EQ(Milli("2Gi"), 2LL * 1024 * 1024 * 1024 * 1000);
  EXPECT_EQ(Milli("1Ki"), 1024000);
  EXPECT_EQ(Milli("1.5Gi"), 1610612736000);
  EXPECT_EQ(Milli("3k"), 3000000);
  EXPECT_EQ(Milli("1M"), 1000000000);
  EXPECT_EQ(Milli("1e3"), 1000000);
  EXPECT_EQ(Milli("1E3"), 1000000);
  EXPECT_FALSE(Quantity::Parse("1E"));  // 1 exa-unit is beyond the documented range
  EXPECT_EQ(Milli("5e-3"), 5);
  EXPECT_EQ(Milli("+4"), 4000);
  EXPECT_EQ(Milli("-1"), -1000);
  EXPECT_EQ(Milli("0"), 0);
  EXPECT_EQ(Milli("8Pi"), 8LL * 1125899906842624 * 1000);
}

TEST(Quantity, RoundsSubMilliValuesUp) {
  using Case = std::pair<std::string_view, int64_t>;
  for (const auto& [text, milli] :
       {Case{"100u", 1}, Case{"1n", 1}, Case{"1500u", 2}, Case{"0.0001", 1}, Case{"0n", 0}}) {
    EXPECT_EQ(Milli(text), milli) << text;
  }
}

TEST(Quantity, RejectsMalformedAndHugeValues) {
  for (const char* bad : {"", "two", "1.2.3", "1Gb", "1 Gi", "Gi", "1ki", "--1", "1e", "1e+",
                          "1.5x", "16Ei", "99999999999999999999", "1e30"}) {
    EXPECT_FALSE(Quantity::Parse(bad).has_value()) << bad;
  }
}

TEST(Quantity, ComparesAndAddsAcrossSuffixes) {
  const auto q = [](std::string_view s) { return *Quantity::Parse(s); };
  EXPECT_EQ(q("1"), q("1000m"));
  EXPECT_EQ(q("1Ki"), q("1024"));
  EXPECT_EQ(q("1k"), q("1e3"));
  EXPECT_LT(q("1G"), q("1Gi"));
  EXPECT_GT(q("16"), q("8"));
  EXPECT_EQ(q("500m") + q("1.5"), q("2"));
  EXPECT_EQ((q("1Gi") + q("1Gi")).Canonical(), "2Gi");
  EXPECT_EQ((q("2") - q("500m")).Canonical(), "1500m");
  Quantity sum;
  for (int i = 0; i < 4; ++i) sum += q("250m");
  EXPECT_EQ(sum, q("1"));
  EXPECT_EQ(q("1500m").units(), 2);
}

TEST(Quantity, AdditionSaturates) {
  const auto big = Quantity::FromMilli(INT64_MAX - 1);
  EXPECT_EQ((big + big).milli(), INT64_MAX);
}

TEST(Quantity, KeepsTextAndCanonicalizes) {
  EXPECT_EQ(Quantity::Parse("2048Mi")->text(), "2048Mi");
  EXPECT_EQ(Quantity::Parse("2048Mi")->Canonical(), "2Gi");
  EXPECT_EQ(Quantity::FromUnits(3000).Canonical(), "3k");
  EXPECT_EQ(Quantity::FromMilli(250).Canonical(), "250m");
  EXPECT_EQ(Quantity::FromMilli(0).Canonical(), "0");
  EXPECT_EQ(Quantity::FromUnits(7).Canonical(), "7");
}

}  // namespace
}  // namespace millrace::api
