// Training checkpoints: one safetensors file holding every LoRA matrix and
// its AdamW moments (f32), with the step count, the options that must match
// on resume and a SHA-256 of the tensors' bytes in its metadata. Written
// atomically (temporary file + rename), so a kill at any moment leaves the
// previous checkpoint intact.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "train/lora_params.h"
#include "train/optimizer.h"

namespace tokenlora {

// `fingerprint`: the options a resumed run must share (rank, targets, seed,
// data size, ...), as key → value text.
void SaveCheckpoint(const std::string& path, const LoraParams& params, AdamW& optimizer,
                    const std::map<std::string, std::string>& fingerprint);

// Restores params and optimizer (moments and step). Throws InputError naming
// the file when it is unreadable, when a fingerprint entry differs ("seed:
// checkpoint has 1, this run 2"), when a tensor is missing, misshaped or not
// finite, or when the tensors' bytes do not match the recorded SHA-256.
void LoadCheckpoint(const std::string& path, LoraParams& params, AdamW& optimizer,
                    const std::map<std::string, std::string>& fingerprint);

}  // namespace tokenlora
