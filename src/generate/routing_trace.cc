#include "generate/routing_trace.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/xml_text.h"

namespace tokenlora {
namespace {

using json = nlohmann::ordered_json;  // keys in the documented order

// Tableau 10: distinct, readable on white, friendly to common colour blindness.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
const char* TaskColor(size_t task) { return kPalette[task % (sizeof(kPalette) / sizeof(kPalette[0]))]; }

std::string Fmt(double v, const char* format = "%.1f") {
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

// Display width in characters of UTF-8 text (one per code point).
int CodePoints(std::string_view s) {
  int n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Splits `text` into lines of at most `max_chars` code points, breaking after
// ", " or "; " where it can (else at a space, else mid-word).
std::vector<std::string> WrapText(std::string_view text, int max_chars) {
  max_chars = std::max(1, max_chars);
  std::vector<std::string> lines;
  while (CodePoints(text) > max_chars) {
    // Byte offset of the first code point past the limit.
    size_t limit = 0;
    for (int cp = 0; limit < text.size(); ++limit) {
      if ((static_cast<unsigned char>(text[limit]) & 0xC0) != 0x80 && cp++ == max_chars) break;
    }
    size_t cut = std::string_view::npos;
    for (const std::string_view sep : {"; ", ", ", " "}) {
      const size_t at = text.substr(0, limit + 1).rfind(sep);
      if (at != std::string_view::npos && at > 0) {
        cut = at + sep.size() - 1;  // keep the separator's punctuation on this line
        break;
      }
    }
    if (cut == std::string_view::npos) cut = limit;
    std::string_view line = text.substr(0, cut);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    lines.emplace_back(line);
    text.remove_prefix(cut);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  }
  if (!text.empty() || lines.empty()) lines.emplace_back(text);
  return lines;
}

size_t TopTask(const std::vector<float>& w) {
  return static_cast<size_t>(std::max_element(w.begin(), w.end()) - w.begin());
}

}  // namespace

std::string RoutingTraceJson(const TokenRouting& routing, const GenerateResult& result,
                             const RoutingTraceInfo& info) {
  json j;
  j["format"] = "tokenlora-trace";
  j["version"] = 1;
  j["router"] = info.router;
  j["policy"] = info.policy;
  j["window"] = info.window;
  j["route_every"] = routing.options().route_every;
  j["kv_policy"] = KvPolicyName(routing.options().kv_policy);
  j["mix_mode"] = info.mix_mode;
  j["tasks"] = routing.task_names();
  j["prompt"] = info.prompt;
  j["prompt_tokens"] = result.prompt_ids.size();
  j["output"] = result.text;
  j["stop_reason"] = result.stop_reason;
  json steps = json::array();
  for (const RoutingTraceStep& s : routing.trace()) {
    steps.push_back({{"step", s.step},
                     {"token", s.token},
                     {"text", s.text},
                     {"rerouted", s.rerouted},
                     {"weights", s.weights},
                     {"similarities", s.similarities},
                     {"router_ms", s.router_ms}});
  }
  j["steps"] = std::move(steps);
  const RoutingStats& st = routing.stats();
  j["stats"] = {{"route_calls", st.route_calls},         {"encoder_runs", st.encoder_runs},
                {"weight_changes", st.weight_changes},   {"router_ms", st.router_ms},
                {"prefill_seconds", result.prefill_seconds}, {"decode_seconds", result.decode_seconds},
                {"recomputed_tokens", result.recomputed_tokens}};
  return j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string RoutingTraceSvg(const TokenRouting& routing, const RoutingTraceInfo& info) {
  const std::vector<RoutingTraceStep>& steps = routing.trace();
  const std::vector<std::string>& tasks = routing.task_names();
  const double width = 960, margin = 24, plot_w = width - 2 * margin;
  const double char_w = 7.8, line_h = 26, font = 13;
  const size_t n = steps.size();

  // The header: a title and the settings in small type, wrapped to the
  // picture's width (monospace advance 0.602 em, rounded up to 0.62).
  const RoutingStats& st = routing.stats();
  const int k = routing.options().route_every;
  char title[128], details[512];
  std::snprintf(title, sizeof(title), "tokenlora token-level routing: %zu generated tokens", n);
  std::snprintf(details, sizeof(details),
                "route %s, kv %s, policy %s, window %s, mix %s; %lld router calls (%lld encoder runs), %.0f ms",
                k == 0 ? "once on the prompt" : ("every " + std::to_string(k) + " tokens").c_str(),
                KvPolicyName(routing.options().kv_policy), info.policy.c_str(), info.window.c_str(),
                info.mix_mode.c_str(), static_cast<long long>(st.route_calls), static_cast<long long>(st.encoder_runs),
                st.router_ms);
  const double details_font = 11, details_line_h = 14;
  const std::vector<std::string> detail_lines = WrapText(details, static_cast<int>(plot_w / (0.62 * details_font)));
  // Everything below the header moves down by the extra detail lines.
  const double header_extra = details_line_h * static_cast<double>(detail_lines.size() - 1);
  const double legend_y = 52 + header_extra;
  const double chart_top = 80 + header_extra, chart_h = 150;

  std::string body;
  // Stacked weights over the steps, one band per task (step-shaped: a
  // token's weights hold for its whole column).
  const double col_w = n > 0 ? plot_w / static_cast<double>(n) : plot_w;
  std::vector<double> below(n, 0.0);
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::string top_edge, bottom_edge;
    for (size_t i = 0; i < n; ++i) {
      const double w = t < steps[i].weights.size() ? steps[i].weights[t] : 0.0;
      const double x0 = margin + static_cast<double>(i) * col_w, x1 = x0 + col_w;
      const double y_lo = chart_top + chart_h * (1.0 - below[i]);
      const double y_hi = chart_top + chart_h * (1.0 - below[i] - w);
      top_edge += (i == 0 ? "M" : "L") + Fmt(x0) + "," + Fmt(y_hi) + "L" + Fmt(x1) + "," + Fmt(y_hi);
      bottom_edge = "L" + Fmt(x1) + "," + Fmt(y_lo) + "L" + Fmt(x0) + "," + Fmt(y_lo) + bottom_edge;
      below[i] += w;
    }
    if (n > 0) body += "<path d=\"" + top_edge + bottom_edge + "Z\" fill=\"" + TaskColor(t) + "\"/>\n";
  }
  body += "<rect x=\"" + Fmt(margin) + "\" y=\"" + Fmt(chart_top) + "\" width=\"" + Fmt(plot_w) +
          "\" height=\"" + Fmt(chart_h) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  // Routing calls: ticks under the chart.
  for (size_t i = 0; i < n; ++i) {
    if (!steps[i].rerouted) continue;
    const double x = margin + static_cast<double>(i) * col_w;
    body += "<line x1=\"" + Fmt(x) + "\" y1=\"" + Fmt(chart_top + chart_h) + "\" x2=\"" + Fmt(x) + "\" y2=\"" +
            Fmt(chart_top + chart_h + 5) + "\" stroke=\"#555\"/>\n";
  }
  body += "<text x=\"" + Fmt(margin) + "\" y=\"" + Fmt(chart_top + chart_h + 18) +
          "\" font-size=\"11\" fill=\"#555\">generated token →  (ticks: the router ran; y: adapter weight, "
          "stacked to 1)</text>\n";

  // Legend: task colours and mean weights.
  double lx = margin;
  for (size_t t = 0; t < tasks.size(); ++t) {
    double mean = 0;
    for (const RoutingTraceStep& s : steps) mean += t < s.weights.size() ? s.weights[t] : 0.0;
    if (n > 0) mean /= static_cast<double>(n);
    char label[64];
    std::snprintf(label, sizeof(label), " (mean %.2f)", mean);
    const std::string text = XmlEscape(tasks[t]) + label;
    body += "<rect x=\"" + Fmt(lx) + "\" y=\"" + Fmt(legend_y) + "\" width=\"12\" height=\"12\" fill=\"" +
            TaskColor(t) + "\"/>";
    body += "<text x=\"" + Fmt(lx + 16) + "\" y=\"" + Fmt(legend_y + 10) + "\" font-size=\"12\">" + text + "</text>\n";
    lx += 16 + 7.0 * CodePoints(tasks[t] + label) + 18;
  }

  // The text: each token on a tint of its top task (stronger when that task
  // dominates), with its whole mixture as a thin stacked bar underneath.
  double x = margin, y = chart_top + chart_h + 48;
  auto new_line = [&] {
    x = margin;
    y += line_h;
  };
  std::string text_svg;
  for (const RoutingTraceStep& s : steps) {
    std::string_view rest = s.text;
    bool first = true;
    while (first || !rest.empty()) {  // a piece may hold newlines: split it
      first = false;
      const size_t nl = rest.find('\n');
      const std::string_view part = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      const int chars = std::max(1, CodePoints(part));
      const double w = chars * char_w;
      if (x + w > width - margin && x > margin) new_line();
      if (!s.weights.empty()) {
        const size_t top = TopTask(s.weights);
        const double alpha = 0.12 + 0.45 * s.weights[top];
        text_svg += "<rect x=\"" + Fmt(x) + "\" y=\"" + Fmt(y - font) + "\" width=\"" + Fmt(w) + "\" height=\"" +
                    Fmt(font + 4) + "\" fill=\"" + TaskColor(top) + "\" fill-opacity=\"" + Fmt(alpha, "%.2f") +
                    "\"><title>step " + std::to_string(s.step) + ": " + XmlEscape(tasks[top]) + "</title></rect>";
        double bx = x;
        for (size_t t = 0; t < s.weights.size(); ++t) {
          const double bw = w * s.weights[t];
          if (bw < 0.05) continue;
          text_svg += "<rect x=\"" + Fmt(bx) + "\" y=\"" + Fmt(y + 5) + "\" width=\"" + Fmt(bw) +
                      "\" height=\"3\" fill=\"" + TaskColor(t) + "\"/>";
          bx += bw;
        }
      }
      text_svg += "<text x=\"" + Fmt(x) + "\" y=\"" + Fmt(y) + "\" xml:space=\"preserve\">" + XmlEscape(part) +
                  "</text>\n";
      x += w;
      if (nl != std::string_view::npos) new_line();
    }
  }
  const double height = y + line_h;

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Fmt(width) + "\" height=\"" +
                    Fmt(height) + "\" viewBox=\"0 0 " + Fmt(width) + " " + Fmt(height) +
                    "\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + Fmt(margin) + "\" y=\"20\" font-size=\"14\" font-weight=\"bold\">" + XmlEscape(title) +
         "</text>\n";
  for (size_t i = 0; i < detail_lines.size(); ++i) {
    svg += "<text x=\"" + Fmt(margin) + "\" y=\"" + Fmt(38 + details_line_h * static_cast<double>(i)) +
           "\" font-size=\"" + Fmt(details_font, "%.0f") + "\" fill=\"#444\">" + XmlEscape(detail_lines[i]) +
           "</text>\n";
  }
  svg += body;
  svg += "<g font-size=\"" + Fmt(font) + "\">\n" + text_svg + "</g>\n</svg>\n";
  return svg;
}

}  // namespace tokenlora
