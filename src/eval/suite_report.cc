#include "eval/suite_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/number_text.h"
#include "core/xml_text.h"

namespace tokenlora::eval {
namespace {

std::string Pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100 * v);
  return buf;
}

std::string CellText(const SuiteTable::Cell& c, bool sampled) {
  if (!c.present) return "-";
  return sampled ? Pct(c.mean) + " ± " + Pct(c.sd) : Pct(c.mean);
}

// Distinct colours for up to ~20 bars, then repeating.
const char* const kPalette[] = {"#9e9e9e", "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a",
                                "#d62728", "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2",
                                "#f7b6d2", "#7f7f7f", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"};

}  // namespace

std::string SuiteTable::RunKey(const std::string& config, EvalTask task, const std::string& run) {
  return config + "|" + EvalTaskName(task) + "|" + run;
}

std::vector<std::string> SuiteTable::RunsOf(const std::string& decoding) const {
  if (decoding == "greedy") return {"greedy"};
  std::vector<std::string> out;
  for (const uint64_t s : seeds) out.push_back("seed" + std::to_string(s));
  return out;
}

const SuiteRunResult* SuiteTable::Find(const std::string& config, EvalTask task, const std::string& run) const {
  const auto it = runs.find(RunKey(config, task, run));
  return it == runs.end() ? nullptr : &it->second;
}

std::optional<std::vector<double>> SuiteTable::ItemScores(const std::string& config, EvalTask task,
                                                          const std::string& decoding) const {
  std::vector<double> sum;
  const std::vector<std::string> names = RunsOf(decoding);
  for (const std::string& run : names) {
    const SuiteRunResult* r = Find(config, task, run);
    if (r == nullptr || r->scores.empty() || (!sum.empty() && r->scores.size() != sum.size())) return std::nullopt;
    if (sum.empty()) sum.assign(r->scores.size(), 0.0);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += r->scores[i];
  }
  if (names.empty()) return std::nullopt;
  for (double& v : sum) v /= static_cast<double>(names.size());
  return sum;
}

SuiteTable::Cell SuiteTable::At(const std::string& config, EvalTask task, const std::string& decoding) const {
  Cell cell;
  std::vector<double> per_run;
  for (const std::string& run : RunsOf(decoding)) {
    const SuiteRunResult* r = Find(config, task, run);
    if (r == nullptr || r->scores.empty()) return cell;
    double sum = 0;
    for (const double v : r->scores) sum += v;
    per_run.push_back(sum / static_cast<double>(r->scores.size()));
    cell.items = r->scores.size();
  }
  if (per_run.empty()) return cell;
  const MeanSd m = MeanAndSd(per_run);
  cell.present = true;
  cell.mean = m.mean;
  cell.sd = m.sd;
  return cell;
}

SuiteTable::Cell SuiteTable::Mean(const std::string& config, const std::string& decoding) const {
  Cell cell;
  const std::vector<std::string> names = RunsOf(decoding);
  std::vector<double> per_run(names.size(), 0.0);
  for (size_t r = 0; r < names.size(); ++r) {
    for (const EvalTask task : tasks) {
      const SuiteRunResult* run = Find(config, task, names[r]);
      if (run == nullptr || run->scores.empty()) return cell;
      double sum = 0;
      for (const double v : run->scores) sum += v;
      per_run[r] += sum / static_cast<double>(run->scores.size()) / static_cast<double>(tasks.size());
      cell.items += run->scores.size();
    }
  }
  if (names.empty() || tasks.empty()) return cell;
  const MeanSd m = MeanAndSd(per_run);
  cell.present = true;
  cell.mean = m.mean;
  cell.sd = m.sd;
  cell.items /= names.size();
  return cell;
}

std::string TableMarkdown(const SuiteTable& table, const std::string& decoding) {
  const bool sampled = decoding == "sampled";
  std::string md = "| configuration |";
  std::string rule = "|---|";
  for (const EvalTask t : table.tasks) {
    md += std::string(" ") + EvalTaskName(t) + " |";
    rule += "---|";
  }
  md += " mean |\n" + rule + "---|\n";
  bool any_missing = false;
  for (const std::string& config : table.configurations) {
    md += "| " + config + " |";
    for (const EvalTask t : table.tasks) {
      const SuiteTable::Cell cell = table.At(config, t, decoding);
      any_missing = any_missing || !cell.present;
      md += " " + CellText(cell, sampled) + " |";
    }
    md += " " + CellText(table.Mean(config, decoding), sampled) + " |\n";
  }
  md += "\nScores in % (";
  for (size_t i = 0; i < table.tasks.size(); ++i) {
    md += std::string(i ? "; " : "") + EvalTaskName(table.tasks[i]) + ": " + EvalMetricName(table.tasks[i]);
  }
  if (!sampled) {
    md += "), greedy.\n";
  } else {
    md += "), mean ± sd over the seeds at temperature " + GeneralNumber(table.temperature);
    if (table.top_k != 0) md += ", top-k " + std::to_string(table.top_k);
    if (table.top_p != 1.0f) md += ", top-p " + GeneralNumber(table.top_p);
    md += ".\n";
  }
  if (any_missing) {
    md += "A dash: not every item of that task (every seed, when sampled) is in the cache at this --limit; "
          "a run without --report-only fills it.\n";
  }
  return md;
}

std::string ConfusionMarkdown(const SuiteTable& table, const std::string& decoding) {
  std::string md;
  for (const std::string& config : table.configurations) {
    // Counts over the decoding's runs: [item task][router task].
    std::vector<std::string> router_tasks;
    std::map<std::string, std::map<std::string, int>> counts;
    for (const EvalTask task : table.tasks) {
      for (const std::string& run : table.RunsOf(decoding)) {
        const SuiteRunResult* r = table.Find(config, task, run);
        if (r == nullptr || r->tasks.empty()) continue;
        if (router_tasks.empty()) router_tasks = r->tasks;
        for (const std::string& top : r->top_task) {
          if (!top.empty()) ++counts[EvalTaskName(task)][top];
        }
      }
    }
    if (counts.empty()) continue;
    md += "**" + config + "** (rows: the item's task; columns: the adapter with the largest mean weight)\n\n| task |";
    std::string rule = "|---|";
    for (const std::string& t : router_tasks) {
      md += " " + t + " |";
      rule += "---|";
    }
    md += " own |\n" + rule + "---|\n";
    for (const EvalTask task : table.tasks) {
      const auto row = counts.find(EvalTaskName(task));
      if (row == counts.end()) continue;
      int total = 0;
      for (const auto& [t, n] : row->second) total += n;
      md += std::string("| ") + EvalTaskName(task) + " |";
      for (const std::string& t : router_tasks) {
        const auto it = row->second.find(t);
        md += " " + std::to_string(it == row->second.end() ? 0 : it->second) + " |";
      }
      const auto own = row->second.find(EvalTaskName(task));
      const int own_n = own == row->second.end() ? 0 : own->second;
      md += " " + Pct(total > 0 ? static_cast<double>(own_n) / total : 0) + "% |\n";
    }
    md += "\n";
  }
  return md;
}

std::string ChartSvg(const SuiteTable& table, const std::string& decoding, const std::vector<std::string>& configs_in) {
  const std::vector<std::string>& configs = configs_in.empty() ? table.configurations : configs_in;
  const bool sampled = decoding == "sampled";
  const size_t groups = table.tasks.size() + 1;  // + the mean
  const double bar_w = 9, gap = 14, left = 46, top = 46, plot_h = 220;
  const double group_w = bar_w * static_cast<double>(configs.size()) + gap;
  const double width = left + group_w * static_cast<double>(groups) + 20;
  const double legend_rows = std::ceil(static_cast<double>(configs.size()) / 4.0);
  const double height = top + plot_h + 40 + 16 * legend_rows;
  char buf[512];
  std::string svg;
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                std::max(width, 560.0), height);
  svg += buf;
  svg += "<text x=\"" + std::to_string(static_cast<int>(left)) + "\" y=\"20\" font-size=\"13\">" +
         XmlEscape(table.suite + " suite on " + table.model + ": held-out score per task (" +
                   (sampled ? "sampled, mean ± sd over seeds" : "greedy") + ")") +
         "</text>\n";
  for (int pct = 0; pct <= 100; pct += 25) {
    const double y = top + plot_h - plot_h * pct / 100.0;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" "
                  "text-anchor=\"end\">%d%%</text>\n",
                  left, width - 10, y, y, left - 6, y + 4, pct);
    svg += buf;
  }
  for (size_t g = 0; g < groups; ++g) {
    const double x0 = left + gap / 2 + group_w * static_cast<double>(g);
    const std::string label = g < table.tasks.size() ? EvalTaskName(table.tasks[g]) : "mean";
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  x0 + (group_w - gap) / 2, top + plot_h + 16, label.c_str());
    svg += buf;
    for (size_t c = 0; c < configs.size(); ++c) {
      const SuiteTable::Cell cell =
          g < table.tasks.size() ? table.At(configs[c], table.tasks[g], decoding) : table.Mean(configs[c], decoding);
      if (!cell.present) continue;
      const double h = plot_h * std::clamp(cell.mean, 0.0, 1.0);
      const double x = x0 + bar_w * static_cast<double>(c);
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %.1f%%</title></rect>\n",
                    x, top + plot_h - h, bar_w - 1, h, kPalette[c % std::size(kPalette)],
                    XmlEscape(configs[c]).c_str(), 100 * cell.mean);
      svg += buf;
      if (sampled && cell.sd > 0) {
        const double y1 = top + plot_h - plot_h * std::clamp(cell.mean + cell.sd, 0.0, 1.0);
        const double y2 = top + plot_h - plot_h * std::clamp(cell.mean - cell.sd, 0.0, 1.0);
        std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                      x + (bar_w - 1) / 2, x + (bar_w - 1) / 2, y1, y2);
        svg += buf;
      }
    }
  }
  for (size_t c = 0; c < configs.size(); ++c) {
    const double x = left + static_cast<double>(c % 4) * 210;
    const double y = top + plot_h + 34 + 16 * static_cast<double>(c / 4);
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                  x, y - 9, kPalette[c % std::size(kPalette)], x + 14, y, XmlEscape(configs[c]).c_str());
    svg += buf;
  }
  return svg + "</svg>\n";
}

nlohmann::json SuiteJson(const SuiteTable& table, const std::map<std::string, std::vector<ClaimReport>>& claims) {
  nlohmann::json out = {{"suite", table.suite}, {"model", table.model}};
  nlohmann::json tasks = nlohmann::json::array();
  for (const EvalTask t : table.tasks) tasks.push_back({{"task", EvalTaskName(t)}, {"metric", EvalMetricName(t)}});
  out["tasks"] = tasks;
  for (const std::string& decoding : table.decodings) {
    nlohmann::json rows = nlohmann::json::array();
    for (const std::string& config : table.configurations) {
      nlohmann::json row = {{"configuration", config}};
      auto cell_json = [&](const SuiteTable::Cell& c) -> nlohmann::json {
        if (!c.present) return nullptr;
        nlohmann::json j = {{"score", c.mean}, {"items", c.items}};
        if (decoding == "sampled") j["sd"] = c.sd;
        return j;
      };
      for (const EvalTask t : table.tasks) row[EvalTaskName(t)] = cell_json(table.At(config, t, decoding));
      row["mean"] = cell_json(table.Mean(config, decoding));
      // Confusion counts of routed runs: {item task: {router task: n}}.
      nlohmann::json confusion = nlohmann::json::object();
      for (const EvalTask t : table.tasks) {
        for (const std::string& run : table.RunsOf(decoding)) {
          const SuiteRunResult* r = table.Find(config, t, run);
          if (r == nullptr) continue;
          for (const std::string& top : r->top_task) {
            if (top.empty()) continue;
            nlohmann::json& n = confusion[EvalTaskName(t)][top];
            n = n.is_null() ? 1 : n.get<int>() + 1;
          }
        }
      }
      if (!confusion.empty()) row["router_confusion"] = confusion;
      rows.push_back(row);
    }
    nlohmann::json d = {{"rows", rows}};
    if (decoding == "sampled") {
      d["temperature"] = table.temperature, d["seeds"] = table.seeds;
      if (table.top_k != 0) d["top_k"] = table.top_k;
      if (table.top_p != 1.0f) d["top_p"] = table.top_p;
    }
    if (const auto it = claims.find(decoding); it != claims.end()) d["claims"] = ClaimsJson(it->second);
    out[decoding] = d;
  }
  return out;
}

}  // namespace tokenlora::eval
