#include "core/xml_text.h"

#include <gtest/gtest.h>

namespace tokenlora {
namespace {

TEST(XmlEscape, EscapesMarkupAndQuotesKeepsUtf8AndBlanksControlCharacters) {
  EXPECT_EQ(XmlEscape("a < b && c > \"d\""), "a &lt; b &amp;&amp; c &gt; &quot;d&quot;");
  EXPECT_EQ(XmlEscape("caf\xc3\xa9 \xe2\x86\x92 ok"), "caf\xc3\xa9 \xe2\x86\x92 ok");
  EXPECT_EQ(XmlEscape(std::string("tab\there\x01") + '\0' + "end"), "tab here  end");
  EXPECT_EQ(XmlEscape(""), "");
}

}  // namespace
}  // namespace tokenlora
