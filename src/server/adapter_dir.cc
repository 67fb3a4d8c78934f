#include "server/adapter_dir.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "server/api_request.h"

namespace tokenlora::server {
namespace {

namespace fs = std::filesystem;

// Whether canonical `p` is `dir` or below it.
bool Inside(const fs::path& p, const fs::path& dir) {
  const fs::path rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

std::string Shown(const std::string& s) { return s.size() > 200 ? s.substr(0, 197) + "..." : s; }

}  // namespace

std::string CanonicalAdapterDir(const std::string& dir) {
  std::error_code ec;
  const fs::path p = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(p)) {
    throw InputError("--adapter-dir " + dir + ": " + (ec ? ec.message() : std::string("not a directory")) +
                     " — give an existing directory that holds the adapters clients may load");
  }
  return p.string();
}

std::string ResolveAdapterPath(const std::string& dir, const std::string& path) {
  const std::string hint = " — give a path inside the server's --adapter-dir, e.g. \"my-adapter\" for " + dir +
                           "/my-adapter";
  if (path.empty()) throw BadRequest("'path' is empty" + hint, "path");
  if (path.find('\0') != std::string::npos) throw BadRequest("'path' holds a NUL byte", "path");
  const fs::path base(dir);
  const fs::path given(path);
  const fs::path joined = given.is_absolute() ? given : base / given;
  std::error_code ec;
  const fs::path real = fs::canonical(joined, ec);  // follows every symlink; fails when missing
  if (ec) {
    // Outside first: a client should not learn what exists elsewhere.
    if (!Inside(joined.lexically_normal(), base)) {
      throw BadRequest("'path' " + Shown(path) + " leads outside the adapter directory" + hint, "path",
                       "path_outside_adapter_dir");
    }
    throw BadRequest("'path' " + Shown(path) + " does not exist under the adapter directory (" + ec.message() + ")" +
                         hint,
                     "path", "adapter_not_found");
  }
  if (!Inside(real, base)) {
    throw BadRequest("'path' " + Shown(path) + " leads outside the adapter directory (through '..' or a symlink)" + hint,
                     "path", "path_outside_adapter_dir");
  }
  if (fs::is_directory(real)) {
    int n = 0;
    fs::recursive_directory_iterator it(real, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const fs::directory_entry& e = *it;
      if (++n > 10000) throw BadRequest("'path' " + Shown(path) + " holds more than 10000 files", "path");
      std::error_code target_ec;
      const fs::path target = fs::canonical(e.path(), target_ec);
      if (target_ec || !Inside(target, base)) {
        throw BadRequest("'path' " + Shown(path) + ": " + e.path().filename().string() +
                             " is a symlink that leads outside the adapter directory" + hint,
                         "path", "path_outside_adapter_dir");
      }
    }
    if (ec) throw BadRequest("'path' " + Shown(path) + " cannot be listed (" + ec.message() + ")", "path");
  }
  return real.string();
}

void CheckAdapterName(std::string_view name) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  bool good = !name.empty() && name.size() <= 64 && ok(name[0]) && name[0] != '.' && name[0] != '_' && name[0] != '-';
  for (char c : name) good = good && ok(c);
  if (!good) {
    throw BadRequest("'name' should be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, got '" +
                         Shown(std::string(name)) + "'",
                     "name");
  }
}

}  // namespace tokenlora::server
