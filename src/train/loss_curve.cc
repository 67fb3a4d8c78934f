#include "train/loss_curve.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/xml_text.h"

namespace tokenlora {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::string LossCurveSvg(const std::vector<std::pair<double, double>>& train,
                         const std::vector<std::pair<double, double>>& val, const std::string& title) {
  constexpr double kW = 720, kH = 360, kLeft = 60, kRight = 20, kTop = 40, kBottom = 40;
  double x_max = 1, y_min = 1e300, y_max = -1e300;
  for (const auto* series : {&train, &val}) {
    for (const auto& [x, y] : *series) {
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  if (y_min > y_max) y_min = 0, y_max = 1;
  if (y_max - y_min < 1e-9) y_max = y_min + 1;
  const auto px = [&](double x) { return kLeft + x / x_max * (kW - kLeft - kRight); };
  const auto py = [&](double y) { return kTop + (y_max - y) / (y_max - y_min) * (kH - kTop - kBottom); };
  std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kW) + "\" height=\"" + Num(kH) +
      "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + Num(kLeft) + "\" y=\"20\" font-size=\"14\">" + XmlEscape(title) + "</text>\n";
  // Axes and five horizontal grid lines with their loss values.
  for (int i = 0; i <= 4; ++i) {
    const double y = y_min + (y_max - y_min) * i / 4.0;
    svg += "<line x1=\"" + Num(kLeft) + "\" x2=\"" + Num(kW - kRight) + "\" y1=\"" + Num(py(y)) + "\" y2=\"" +
           Num(py(y)) + "\" stroke=\"#ddd\"/>\n";
    char label[32];
    std::snprintf(label, sizeof label, "%.3f", y);
    svg += "<text x=\"" + Num(kLeft - 5) + "\" y=\"" + Num(py(y) + 4) + "\" text-anchor=\"end\">" + label + "</text>\n";
  }
  svg += "<text x=\"" + Num(kW - kRight) + "\" y=\"" + Num(kH - 10) + "\" text-anchor=\"end\">step " +
         std::to_string(static_cast<long long>(x_max)) + "</text>\n";
  svg += "<text x=\"" + Num(kLeft) + "\" y=\"" + Num(kH - 10) + "\">0</text>\n";
  auto polyline = [&](const std::vector<std::pair<double, double>>& s, const char* color) {
    if (s.empty()) return;
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : s) svg += Num(px(x)) + "," + Num(py(y)) + " ";
    svg += "\"/>\n";
    for (const auto& [x, y] : s) {
      if (s.size() <= 50)
        svg += "<circle cx=\"" + Num(px(x)) + "\" cy=\"" + Num(py(y)) + "\" r=\"2.5\" fill=\"" + color + "\"/>\n";
    }
  };
  polyline(train, "#1f77b4");
  polyline(val, "#d62728");
  svg += "<text x=\"" + Num(kW - 200) + "\" y=\"20\" fill=\"#1f77b4\">train loss</text>\n";
  if (!val.empty()) svg += "<text x=\"" + Num(kW - 110) + "\" y=\"20\" fill=\"#d62728\">validation loss</text>\n";
  svg += "</svg>\n";
  return svg;
}

}  // namespace tokenlora
