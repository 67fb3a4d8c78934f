// Text for XML documents (the SVG charts and traces every layer writes).
#pragma once

#include <string>
#include <string_view>

namespace tokenlora {

// XML character data or attribute value: escapes & < > ", turns control
// characters (below U+0020; XML 1.0 forbids most of them) into spaces, and
// keeps UTF-8 as is. Callers that want line breaks split lines first.
std::string XmlEscape(std::string_view s);

}  // namespace tokenlora
