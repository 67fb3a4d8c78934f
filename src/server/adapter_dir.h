// Where a run-time adapter may come from: only from under the server's
// --adapter-dir. A client names a path inside it; this resolves the path
// (every "..", every symlink) and refuses anything that leads outside.
#pragma once

#include <string>
#include <string_view>

namespace tokenlora::server {

// The canonical form of --adapter-dir; InputError when it is not an
// existing directory.
std::string CanonicalAdapterDir(const std::string& dir);

// `path` (relative to `dir`, or absolute inside it) resolved; `dir` is
// canonical. The result, and for a directory every entry in it (PEFT's
// adapter_config.json and weights), must lie inside `dir` after symlinks
// are followed. Throws ApiError 400 naming the field "path": a path outside,
// a symlink out, a path that does not exist. (This guards against what
// clients send; whoever can write into `dir` itself is trusted.)
std::string ResolveAdapterPath(const std::string& dir, const std::string& path);

// A run-time adapter's name: 1-64 of [A-Za-z0-9._-], starting with a letter
// or digit. Throws ApiError 400 naming "name".
void CheckAdapterName(std::string_view name);

}  // namespace tokenlora::server
