// The documentation a newcomer reads: README.md states the command CI runs,
// and every relative link in README.md and docs/*.md points at a file that
// exists (and, for #anchors into our Markdown, at a heading that exists).
// GCC 12 with -fsanitize=address reports -Wmaybe-uninitialized inside
// libstdc++'s std::regex (std::function members of its NFA states): a false
// positive in the system header, which the Release build does not report.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// GitHub's anchor for a heading: lower case, spaces to '-', punctuation dropped.
std::string Anchor(const std::string& heading) {
  std::string out;
  for (const char c : heading) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || u >= 0x80) {
      out += static_cast<char>(std::tolower(u));
    } else if (c == ' ') {
      out += '-';
    }
  }
  return out;
}

std::set<std::string> Anchors(const std::string& markdown) {
  std::set<std::string> out;
  std::istringstream in(markdown);
  bool fenced = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) fenced = !fenced;
    if (fenced || line.empty() || line[0] != '#') continue;
    const size_t text = line.find_first_not_of('#');
    if (text != std::string::npos) out.insert(Anchor(line.substr(line.find_first_not_of(' ', text))));
  }
  return out;
}

TEST(Docs, ReadmeStatesTheCommandCiRuns) {
  const std::string ci = ReadAll(testing::SourcePath(".ci/run"));
  ASSERT_NE(ci.find("scripts/test"), std::string::npos) << ".ci/run no longer runs scripts/test: update this test";
  const std::string readme = ReadAll(testing::SourcePath("README.md"));
  EXPECT_NE(readme.find("```sh\nscripts/test\n```"), std::string::npos);
  EXPECT_NE(readme.find("```sh\nscripts/demo"), std::string::npos);
}

TEST(Docs, RelativeLinksPointAtFilesAndHeadings) {
  std::vector<fs::path> pages = {testing::SourcePath("README.md")};
  for (const auto& e : fs::directory_iterator(testing::SourcePath("docs"))) {
    if (e.path().extension() == ".md") pages.push_back(e.path());
  }
  ASSERT_GE(pages.size(), 6u) << "README.md and docs/{cli,formats,results,performance,development}.md";
  const std::regex link(R"(\]\(([^)\s]+)\))");
  int checked = 0;
  for (const fs::path& page : pages) {
    const std::string text = ReadAll(page);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link); it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1].str();
      if (target.find("://") != std::string::npos) continue;
      const size_t hash = target.find('#');
      const std::string file = target.substr(0, hash);
      const fs::path resolved = file.empty() ? page : page.parent_path() / file;
      ++checked;
      ASSERT_TRUE(fs::exists(resolved)) << page.filename() << " links to missing " << target;
      if (hash != std::string::npos && resolved.extension() == ".md") {
        EXPECT_EQ(Anchors(ReadAll(resolved)).count(target.substr(hash + 1)), 1u)
            << page.filename() << " links to " << target << ", a heading that does not exist";
      }
    }
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace tokenlora
