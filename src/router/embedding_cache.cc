#include "router/embedding_cache.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/io_util.h"
#include "router/sha256.h"

namespace tokenlora {
namespace {

constexpr std::string_view kMagic = "tokenlora-emb1\n";
constexpr size_t kKeyHex = 64;
constexpr size_t kHeader = kMagic.size() + kKeyHex + 1 + 2 * sizeof(uint64_t);

void HashField(Sha256& h, std::string_view s) {
  const uint64_t n = s.size();  // length-prefixed: no two lists hash alike by concatenation
  h.Update(&n, sizeof n);
  h.Update(s);
}

}  // namespace

std::string EmbeddingCache::Key(const EmbedderIdentity& e, const std::string& variant,
                                const std::vector<std::string>& texts) {
  Sha256 h;
  for (const std::string& f : {std::string("tokenlora embedding cache 1"), e.name, e.sha256,
                               std::to_string(e.dim), std::to_string(e.max_seq_length), e.pooling,
                               std::string(e.normalize ? "normalize" : "raw"), variant,
                               std::to_string(texts.size())}) {
    HashField(h, f);
  }
  for (const std::string& t : texts) HashField(h, t);
  return h.HexDigest();
}

std::string EmbeddingCache::PathOf(const std::string& key) const {
  return (std::filesystem::path(dir_) / (key + ".emb")).string();
}

std::optional<std::vector<float>> EmbeddingCache::Load(const std::string& key, size_t n, size_t dim) const {
  const std::string path = PathOf(key);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  const auto size = std::filesystem::file_size(path, ec);
  const size_t want = kHeader + n * dim * sizeof(float);
  const auto bad = [&](const std::string& why) {
    return InputError("embeddings cache entry " + io_internal::Quote(path) + ": " + why +
                      " — a truncated or foreign file? delete it and the run embeds the texts again");
  };
  if (ec || size != want) {
    throw bad("expected " + std::to_string(want) + " bytes (" + std::to_string(n) + " × " + std::to_string(dim) +
              " floats), got " + (ec ? std::string("an unreadable file") : std::to_string(size)));
  }
  const MappedFile f = MappedFile::Open(path);
  const uint8_t* p = f.data();
  uint64_t got_n = 0, got_dim = 0;
  std::memcpy(&got_n, p + kMagic.size() + kKeyHex + 1, sizeof got_n);
  std::memcpy(&got_dim, p + kMagic.size() + kKeyHex + 1 + sizeof got_n, sizeof got_dim);
  if (std::memcmp(p, kMagic.data(), kMagic.size()) != 0 ||
      std::memcmp(p + kMagic.size(), key.data(), kKeyHex) != 0 || got_n != n || got_dim != dim) {
    throw bad("the header does not match its name (" + std::to_string(n) + " × " + std::to_string(dim) + ")");
  }
  std::vector<float> out(n * dim);
  std::memcpy(out.data(), p + kHeader, out.size() * sizeof(float));  // x86-64: little-endian already
  return out;
}

void EmbeddingCache::Store(const std::string& key, size_t n, size_t dim, const std::vector<float>& emb) const {
  TL_CHECK(key.size() == kKeyHex && emb.size() == n * dim);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw InputError("--embeddings-cache " + io_internal::Quote(dir_) + ": cannot make the folder (" +
                     ec.message() + ")");
  }
  std::string bytes(kMagic);
  bytes += key;
  bytes += '\n';
  const uint64_t header[2] = {n, dim};
  bytes.append(reinterpret_cast<const char*>(header), sizeof header);
  bytes.append(reinterpret_cast<const char*>(emb.data()), emb.size() * sizeof(float));
  WriteFileAtomically(PathOf(key), bytes);
}

}  // namespace tokenlora
