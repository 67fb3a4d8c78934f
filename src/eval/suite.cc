#include "eval/suite.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/json_text.h"

namespace tokenlora::eval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kTaskOrder[] = {"gsm8k", "arc_challenge", "squad", "codealpaca"};

std::string Show(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

[[noreturn]] void Bad(const std::string& where, const std::string& field, const std::string& expected,
                      const json& got) {
  throw InputError(where + ": field '" + field + "' should be " + expected + ", got " + Show(got));
}

void OnlyKnownFields(const json& j, const std::string& where, const std::set<std::string>& known) {
  for (const auto& [key, value] : j.items()) {
    if (known.count(key) == 0) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      throw InputError(where + ": unknown field '" + key + "'; expected one of " + list);
    }
  }
}

std::string String(const json& j, const std::string& key, const std::string& where) {
  if (!j.at(key).is_string() || j.at(key).get<std::string>().empty()) Bad(where, key, "a non-empty string", j.at(key));
  return j.at(key).get<std::string>();
}

int64_t PositiveInt(const json& j, const std::string& key, const std::string& where, int64_t max = 1'000'000'000) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > max) {
    Bad(where, key, "a whole number in [1, " + std::to_string(max) + "]", v);
  }
  return v.get<int64_t>();
}

bool Bool(const json& j, const std::string& key, const std::string& where) {
  if (!j.at(key).is_boolean()) Bad(where, key, "true or false", j.at(key));
  return j.at(key).get<bool>();
}

std::string Resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).string();
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 80) return false;
  for (const char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  }
  return name != "." && name != "..";
}

SuiteConfiguration ParseConfiguration(const json& j, const std::string& where, const std::string& base_dir) {
  if (!j.is_object()) throw InputError(where + ": should be an object like {\"name\": \"base\"}, got " + Show(j));
  OnlyKnownFields(j, where,
                  {"name", "mix", "route_every", "kv_policy", "mix_mode", "route_policy", "router", "retokenize",
                   "stop_at_eos", "max_total", "description"});
  if (!j.contains("name")) throw InputError(where + ": no \"name\" field");
  SuiteConfiguration c;
  c.name = String(j, "name", where);
  if (!ValidName(c.name)) {
    Bad(where, "name", "1-80 letters, digits, '-', '_', '.' or ':' (it names files)", j["name"]);
  }
  const std::string at = where + " ('" + c.name + "')";
  if (j.contains("mix")) {
    if (!j["mix"].is_object()) Bad(at, "mix", "an object {adapter: weight}", j["mix"]);
    for (const auto& [name, w] : j["mix"].items()) {
      if (!w.is_number() || !std::isfinite(w.get<double>()) || std::fabs(w.get<double>()) > 1e6) {
        Bad(at, "mix." + name, "a finite number", w);
      }
      c.mix.emplace_back(name, w.get<float>());
    }
  }
  if (j.contains("route_every")) {
    const json& v = j["route_every"];
    if (v.is_string() && v.get<std::string>() == "prompt") {
      c.route_every = "prompt";
    } else if (v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= 1'000'000) {
      c.route_every = std::to_string(v.get<int64_t>());
    } else {
      Bad(at, "route_every", "a whole number >= 1 or \"prompt\"", v);
    }
    if (!c.mix.empty()) throw InputError(at + ": 'mix' fixes the weights, 'route_every' routes them: give one");
  }
  const bool routed = c.route_every.has_value();
  auto routed_only = [&](const char* key) {
    if (j.contains(key) && !routed) {
      throw InputError(at + ": '" + key + "' applies to routed configurations only: add \"route_every\": K");
    }
  };
  for (const char* key : {"kv_policy", "route_policy", "router"}) routed_only(key);
  if (j.contains("kv_policy")) {
    c.kv_policy = String(j, "kv_policy", at);
    if (c.kv_policy != "keep" && c.kv_policy != "recompute") Bad(at, "kv_policy", "\"keep\" or \"recompute\"", j["kv_policy"]);
  }
  if (j.contains("mix_mode")) {
    c.mix_mode = String(j, "mix_mode", at);
    if (c.mix_mode != "exact" && c.mix_mode != "peft-linear" && c.mix_mode != "peft04-linear") {
      Bad(at, "mix_mode", "\"exact\", \"peft-linear\" or \"peft04-linear\"", j["mix_mode"]);
    }
  }
  if (j.contains("route_policy")) {
    c.route_policy = String(j, "route_policy", at);
    if (c.route_policy != "paper" && c.route_policy != "softmax" && c.route_policy != "top-k") {
      Bad(at, "route_policy", "\"paper\", \"softmax\" or \"top-k\"", j["route_policy"]);
    }
  }
  if (j.contains("router")) c.router = Resolve(String(j, "router", at), base_dir);
  if (j.contains("retokenize")) c.retokenize = Bool(j, "retokenize", at);
  if (j.contains("stop_at_eos")) c.stop_at_eos = Bool(j, "stop_at_eos", at);
  if (j.contains("max_total")) c.max_total = static_cast<int>(PositiveInt(j, "max_total", at, 1 << 20));
  if (j.contains("description") && !j["description"].is_string()) Bad(at, "description", "a string", j["description"]);
  return c;
}

SuiteClaims ParseClaims(const json& j, const std::string& where, const Suite& suite) {
  if (!j.is_object()) throw InputError(where + ": should be an object, got " + Show(j));
  OnlyKnownFields(j, where, {"base", "routed", "own_adapter", "every_k", "best_k", "also_routed"});
  SuiteClaims c;
  auto config_name = [&](const json& v, const std::string& field) {
    if (!v.is_string()) Bad(where, field, "a configuration name", v);
    const std::string name = v.get<std::string>();
    if (suite.Find(name) == nullptr) {
      throw InputError(where + ": field '" + field + "' names configuration '" + name +
                       "', which the suite does not have");
    }
    return name;
  };
  for (const char* key : {"base", "routed", "own_adapter", "every_k"}) {
    if (!j.contains(key)) throw InputError(where + ": no \"" + key + "\" field");
  }
  c.base = config_name(j["base"], "base");
  c.routed = config_name(j["routed"], "routed");
  if (!j["own_adapter"].is_object()) Bad(where, "own_adapter", "an object {task: configuration}", j["own_adapter"]);
  for (const auto& [task, v] : j["own_adapter"].items()) {
    try {
      ParseEvalTask(task);
    } catch (const InputError& e) {
      throw InputError(where + " own_adapter: " + e.what());
    }
    c.own_adapter[task] = config_name(v, "own_adapter." + task);
  }
  if (!j["every_k"].is_object()) Bad(where, "every_k", "an object {\"k\": configuration}", j["every_k"]);
  for (const auto& [k, v] : j["every_k"].items()) {
    int value = 0;
    std::istringstream in(k);
    if (!(in >> value) || value < 1 || !in.eof()) Bad(where, "every_k", "keys that are whole numbers >= 1", json(k));
    c.every_k[value] = config_name(v, "every_k." + k);
  }
  if (j.contains("best_k")) c.best_k = static_cast<int>(PositiveInt(j, "best_k", where, 1'000'000));
  if (j.contains("also_routed")) {
    const json& also = j["also_routed"];
    if (!also.is_array()) Bad(where, "also_routed", "a list of routed configuration names", also);
    for (size_t i = 0; i < also.size(); ++i) {
      const std::string field = "also_routed[" + std::to_string(i) + "]";
      const std::string name = config_name(also[i], field);
      if (!suite.Find(name)->routed()) Bad(where, field, "a routed configuration (with route_every)", also[i]);
      c.also_routed.push_back(name);
    }
  }
  if (c.every_k.count(c.best_k) == 0) {
    throw InputError(where + ": best_k " + std::to_string(c.best_k) + " is not one of the every_k keys");
  }
  return c;
}

}  // namespace

const SuiteConfiguration* Suite::Find(const std::string& config_name) const {
  for (const SuiteConfiguration& c : configurations) {
    if (c.name == config_name) return &c;
  }
  return nullptr;
}

Suite ParseSuite(const json& j, const std::string& where, const std::string& base_dir) {
  if (!j.is_object()) throw InputError(where + ": expected a JSON object with \"tasks\" and \"configurations\"");
  OnlyKnownFields(j, where,
                  {"name", "description", "limit", "tasks", "adapters", "router", "sampling", "decodings",
                   "configurations", "claims"});
  Suite s;
  s.name = j.contains("name") ? String(j, "name", where) : fs::path(where).stem().string();
  if (j.contains("limit")) s.limit = PositiveInt(j, "limit", where);
  if (!j.contains("tasks")) throw InputError(where + ": no \"tasks\" field (an object {task: {\"data\": FILE}})");
  if (!j["tasks"].is_object() || j["tasks"].empty()) Bad(where, "tasks", "a non-empty object {task: {\"data\": FILE}}", j["tasks"]);
  // The paper's task order first, then any other order is refused by name.
  for (const char* name : kTaskOrder) {
    if (!j["tasks"].contains(name)) continue;
    const json& t = j["tasks"][name];
    const std::string at = where + " tasks." + name;
    if (!t.is_object()) throw InputError(at + ": should be an object {\"data\": FILE}, got " + Show(t));
    OnlyKnownFields(t, at, {"data", "every", "limit"});
    if (!t.contains("data")) throw InputError(at + ": no \"data\" field (FILE.jsonl, optionally sliced)");
    SuiteTask task{ParseEvalTask(name), String(t, "data", at)};
    if (t.contains("every")) task.every = PositiveInt(t, "every", at);
    if (t.contains("limit")) task.limit = PositiveInt(t, "limit", at);
    s.tasks.push_back(task);
  }
  for (const auto& [name, value] : j["tasks"].items()) {
    try {
      ParseEvalTask(name);
    } catch (const InputError& e) {
      throw InputError(where + " tasks: " + e.what());
    }
  }
  if (j.contains("adapters")) {
    if (!j["adapters"].is_object()) Bad(where, "adapters", "an object {name: path}", j["adapters"]);
    for (const auto& [name, path] : j["adapters"].items()) {
      if (!path.is_string() || path.get<std::string>().empty()) Bad(where, "adapters." + name, "a path", path);
      s.adapters.emplace_back(name, Resolve(path.get<std::string>(), base_dir));
    }
  }
  if (j.contains("router")) s.router = Resolve(String(j, "router", where), base_dir);
  if (j.contains("sampling")) {
    const json& sm = j["sampling"];
    const std::string at = where + " sampling";
    if (!sm.is_object()) Bad(where, "sampling", "an object {\"temperature\": T, \"seeds\": [...]}", sm);
    OnlyKnownFields(sm, at, {"temperature", "top_k", "top_p", "seeds"});
    if (sm.contains("temperature")) {
      const json& t = sm["temperature"];
      if (!t.is_number() || !(t.get<double>() > 0) || t.get<double>() > 100) Bad(at, "temperature", "a number in (0, 100]", t);
      s.sampling.temperature = t.get<float>();
    }
    if (sm.contains("top_k")) {
      const json& k = sm["top_k"];
      if (!k.is_number_integer() || k.get<int64_t>() < 0 || k.get<int64_t>() > 1000000) {
        Bad(at, "top_k", "a whole number >= 0 (0: off)", k);
      }
      s.sampling.top_k = k.get<int>();
    }
    if (sm.contains("top_p")) {
      const json& p = sm["top_p"];
      if (!p.is_number() || !(p.get<double>() > 0) || p.get<double>() > 1) Bad(at, "top_p", "a number in (0, 1] (1: off)", p);
      s.sampling.top_p = p.get<float>();
    }
    if (sm.contains("seeds")) {
      const json& seeds = sm["seeds"];
      if (!seeds.is_array() || seeds.empty()) Bad(at, "seeds", "a non-empty list of whole numbers >= 0", seeds);
      s.sampling.seeds.clear();
      for (const json& v : seeds) {
        if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
          Bad(at, "seeds", "a non-empty list of whole numbers >= 0", seeds);
        }
        s.sampling.seeds.push_back(v.get<uint64_t>());
      }
    }
  }
  if (j.contains("decodings")) {
    const json& d = j["decodings"];
    if (!d.is_array() || d.empty()) Bad(where, "decodings", "a non-empty list of \"greedy\" and/or \"sampled\"", d);
    s.decodings.clear();
    for (const json& v : d) {
      if (!v.is_string() || (v.get<std::string>() != "greedy" && v.get<std::string>() != "sampled")) {
        Bad(where, "decodings", "a non-empty list of \"greedy\" and/or \"sampled\"", d);
      }
      s.decodings.push_back(v.get<std::string>());
    }
  }
  if (!j.contains("configurations")) throw InputError(where + ": no \"configurations\" field (a list of {\"name\": ...})");
  if (!j["configurations"].is_array() || j["configurations"].empty()) {
    Bad(where, "configurations", "a non-empty list of {\"name\": ...}", j["configurations"]);
  }
  std::set<std::string> adapter_names;
  for (const auto& [name, path] : s.adapters) adapter_names.insert(name);
  for (size_t i = 0; i < j["configurations"].size(); ++i) {
    const std::string at = where + " configurations[" + std::to_string(i) + "]";
    SuiteConfiguration c = ParseConfiguration(j["configurations"][i], at, base_dir);
    if (s.Find(c.name) != nullptr) throw InputError(at + ": a second configuration named '" + c.name + "'");
    s.configurations.push_back(std::move(c));
  }
  if (j.contains("claims")) s.claims = ParseClaims(j["claims"], where + " claims", s);
  return s;
}

json PaperSuiteJson() {
  const std::vector<std::string> tasks(std::begin(kTaskOrder), std::end(kTaskOrder));
  json adapters = json::object(), uniform = json::object(), ones = json::object();
  for (const std::string& t : tasks) {
    adapters[t] = "adapters/" + t;
    uniform[t] = 1.0 / static_cast<double>(tasks.size());
    ones[t] = 1;
  }
  json configs = json::array();
  configs.push_back({{"name", "base"}, {"description", "the base model alone"}});
  json own = json::object();
  for (const std::string& t : tasks) {
    configs.push_back({{"name", "adapter-" + t}, {"mix", {{t, 1}}}, {"description", "the " + t + " adapter alone"}});
    own[t] = "adapter-" + t;
  }
  configs.push_back({{"name", "uniform"}, {"mix", uniform}, {"description", "every adapter at 1/4, exact"}});
  configs.push_back({{"name", "uniform-peft04"},
                     {"mix", ones},
                     {"mix_mode", "peft04-linear"},
                     {"description", "the reference's merge of every adapter at weight 1"}});
  json every_k = json::object();
  for (const std::string mode : {"exact", "peft04-linear"}) {
    const std::string suffix = mode == "exact" ? "" : "-peft04";
    configs.push_back({{"name", "routed-prompt" + suffix}, {"route_every", "prompt"}, {"mix_mode", mode}});
    for (int k = 1; k <= 4; ++k) {
      const std::string name = "routed-k" + std::to_string(k) + suffix;
      configs.push_back({{"name", name}, {"route_every", k}, {"mix_mode", mode}});
      if (mode == "exact") every_k[std::to_string(k)] = name;
    }
    configs.push_back(
        {{"name", "routed-k2-recompute" + suffix}, {"route_every", 2}, {"kv_policy", "recompute"}, {"mix_mode", mode}});
  }
  configs.push_back({{"name", "reference-k2"},
                     {"route_every", 2},
                     {"kv_policy", "recompute"},
                     {"mix_mode", "peft04-linear"},
                     {"retokenize", true},
                     {"stop_at_eos", false},
                     {"max_total", 256},
                     {"router", "adapters/router-arc-train-test.json"},
                     {"description",
                      "the reference's loop: merged adapters, text re-tokenized every token, no end-of-text stop, "
                      "256 tokens in all, ARC centroid from train + test"}});
  configs.push_back({{"name", "routed-k2-whitened"},
                     {"route_every", 2},
                     {"router", "adapters/router-whitened.json"},
                     {"description",
                      "beyond the paper: routed-k2 with cosines in the whitened space (router build --whiten 0.1)"}});
  configs.push_back({{"name", "routed-k2-whitened-top1"},
                     {"route_every", 2},
                     {"router", "adapters/router-whitened.json"},
                     {"route_policy", "top-k"},
                     {"description",
                      "beyond the paper: as routed-k2-whitened, all the weight on the top task (policy top-k, k = 1)"}});
  return {{"name", "paper"},
          {"description", "the seed paper's table: every baseline, token-level routing every k = 1..4"},
          {"limit", 200},
          {"tasks",
           {{"gsm8k", {{"data", "gsm8k/test.jsonl"}}},
            {"arc_challenge", {{"data", "arc_challenge/ARC-Challenge-Test.jsonl"}}},
            // The second half of SQuAD dev's articles (the first half trained
            // the adapter), every 24th question: ~200 items over 24 articles.
            {"squad", {{"data", "squad/dev.jsonl[5696:]"}, {"every", 24}}},
            {"codealpaca", {{"data", "codealpaca/code_alpaca_2k.jsonl[90%:]"}}}}},
          {"adapters", adapters},
          {"router", "adapters/router.json"},
          // The reference samples with transformers 4.31's pipeline(temperature=0.9)
          // and no other setting, so generate() starts from Llama-2-7b-hf's
          // generation_config.json as released (do_sample true, temperature 0.6,
          // top_p 0.9), overrides the temperature, and adds GenerationConfig's
          // default top_k 50: temperature, then top-k, then top-p.
          {"sampling", {{"temperature", 0.9}, {"top_k", 50}, {"top_p", 0.9}, {"seeds", {1, 2, 3}}}},
          {"decodings", {"greedy", "sampled"}},
          {"configurations", configs},
          {"claims",
           {{"base", "base"},
            {"routed", "routed-k2"},
            {"own_adapter", own},
            {"every_k", every_k},
            {"best_k", 2},
            {"also_routed", {"routed-k2-whitened", "routed-k2-whitened-top1"}}}}};
}

Suite LoadSuite(const std::string& name_or_file, const std::string& checkout) {
  if (name_or_file == "paper") return ParseSuite(PaperSuiteJson(), "built-in suite 'paper'", checkout);
  std::ifstream in(name_or_file, std::ios::binary);
  if (!in) {
    throw InputError("--suite: cannot read '" + name_or_file + "': expected 'paper' (the built-in suite) or a suite JSON file");
  }
  json j;
  try {
    j = ParseBoundedJson(std::string(std::istreambuf_iterator<char>(in), {}));
  } catch (const json::exception& e) {
    throw InputError(name_or_file + ": not valid JSON (" + e.what() + ")");
  }
  return ParseSuite(j, name_or_file, fs::path(name_or_file).parent_path().string());
}

void SelectFromSuite(Suite& suite, const std::string& names, const std::string& decodings,
                     const std::string& tasks) {
  auto split = [](const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');) {
      if (!part.empty()) out.push_back(part);
    }
    return out;
  };
  if (!names.empty()) {
    std::vector<SuiteConfiguration> kept;
    for (const std::string& name : split(names)) {
      const SuiteConfiguration* c = suite.Find(name);
      if (c == nullptr) {
        std::string list;
        for (const SuiteConfiguration& x : suite.configurations) list += (list.empty() ? "" : ", ") + x.name;
        throw InputError("--configs: the suite has no configuration '" + name + "'; it has " + list);
      }
      kept.push_back(*c);
    }
    suite.configurations = std::move(kept);
  }
  if (!tasks.empty()) {
    std::vector<SuiteTask> kept;
    for (const std::string& name : split(tasks)) {
      EvalTask task;
      try {
        task = ParseEvalTask(name);
      } catch (const InputError& e) {
        throw InputError(std::string("--tasks: ") + e.what());
      }
      const auto it = std::find_if(suite.tasks.begin(), suite.tasks.end(),
                                   [&](const SuiteTask& t) { return t.task == task; });
      if (it == suite.tasks.end()) throw InputError("--tasks: the suite has no task '" + name + "'");
      kept.push_back(*it);
    }
    suite.tasks = std::move(kept);
  }
  if (!decodings.empty()) {
    std::vector<std::string> kept;
    for (const std::string& d : split(decodings)) {
      if (d != "greedy" && d != "sampled") {
        throw InputError("--decodings: expected greedy and/or sampled, got '" + d + "'");
      }
      kept.push_back(d);
    }
    suite.decodings = std::move(kept);
  }
}

}  // namespace tokenlora::eval
