// loss_plot.hpp: the trainer's loss curves as a PNG (snip-train train / rpn / demo).
#pragma once

#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>

#include <snip/train/train.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace snip::apps {

/// @brief The loss curves as a PNG: each loss smoothed over a window of steps (raw total
/// in light grey behind), against the step.
inline void write_loss_png(const std::string& path, const std::vector<snip::train::log_row>& h,
                           const std::string& title) {
    plot::chart c;
    c.title = title;
    c.xlabel = "step";
    c.ylabel = "loss";
    const std::size_t n = h.size();
    const std::size_t win = std::max<std::size_t>(1, n / 50);
    auto smooth = [&](double snip::train::log_row::*f) {
        std::vector<double> x, y;
        double acc = 0;
        for (std::size_t i = 0; i < n; ++i) {
            acc += h[i].*f;
            if (i >= win) acc -= h[i - win].*f;
            const std::size_t k = std::min(i + 1, win);
            if ((i + 1) % std::max<std::size_t>(1, win / 2) == 0 || i + 1 == n) {
                x.push_back(double(h[i].step));
                y.push_back(acc / double(k));
            }
        }
        return std::pair{x, y};
    };
    if (n > 0) {
        std::vector<double> rx, ry;
        for (const snip::train::log_row& r : h) rx.push_back(double(r.step)), ry.push_back(r.total);
        c.data.push_back({"", rx, ry, {215, 215, 215}, plot::series::line, 1});
    }
    const std::pair<const char*, double snip::train::log_row::*> parts[] = {
        {"total", &snip::train::log_row::total},       {"rpn cls", &snip::train::log_row::rpn_cls},
        {"rpn box", &snip::train::log_row::rpn_box},   {"rcnn cls", &snip::train::log_row::rcnn_cls},
        {"rcnn box", &snip::train::log_row::rcnn_box}};
    const draw::rgb colours[] = {{20, 20, 20}, {31, 119, 180}, {44, 160, 44}, {214, 39, 40},
                                 {148, 103, 189}};
    for (std::size_t k = 0; k < 5; ++k) {
        auto [x, y] = smooth(parts[k].second);
        if (k >= 3 && std::all_of(y.begin(), y.end(), [](double v) { return v == 0.0; }))
            continue; // RPN-only runs have no RCNN losses
        c.data.push_back({parts[k].first, x, y, colours[k], plot::series::line, k == 0 ? 3 : 2});
    }
    c.ymin = 0.0;
    draw::write_png(plot::render(c, 900, 520), path);
}

/// @brief A train_options::on_log hook that rewrites `out_dir`/loss.png at every log point.
inline auto loss_png_writer(const std::string& out_dir) {
    return [path = out_dir + "/loss.png"](const std::vector<snip::train::log_row>& h,
                                          const std::string& title) {
        write_loss_png(path, h, title);
    };
}

} // namespace snip::apps
