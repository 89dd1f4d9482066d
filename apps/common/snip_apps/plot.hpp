// plot.hpp: small charts on a draw::canvas (cairo): scatter, line and bar series on linear or
// log axes with nice ticks, tick labels, a title, axis labels and a legend; and a grid
// that tiles several charts into one image. Used by `snip-chips stats`.
//
//   plot::chart c;
//   c.title = "box sizes";  c.xlabel = "sqrt(w*h), px";  c.log_x = true;
//   c.data.push_back({"boxes", centres, counts, {30, 80, 235}, plot::series::bars});
//   draw::write_png(plot::render(c), "sizes.png");
//
// Conventions:
//  - Ticks: linear axes step by 1, 2 or 5 times a power of ten; log axes (base 10) put
//    labels at 1-2-5 per decade, at every decade, or at every n-th decade, whichever is
//    the densest whose labels do not collide. Log axes drop values <= 0.
//  - Ranges: taken from the data (bars: their edges and the zero baseline) with a small
//    margin, unless xmin/xmax/ymin/ymax are given; they are used as given.
//  - Everything the series draw is clipped to the plot area. Non-finite points (and
//    points <= 0 on a log axis) are skipped; lines break there.
//  - Bars: `x` are bin CENTRES. A bin reaches halfway to its neighbours (halfway in log
//    space on a log x axis), so give the geometric centre of [a, b) - sqrt(a*b) - for
//    log bins; the outer bins mirror their inner half; a lone bar is 1 wide (linear)
//    or a factor of 2 wide (log). Bars of several series at the same x are drawn side by
//    side in that bin, in series order.
//    Bars rise from 0 (linear y) or from the bottom of the axis (log y).
//  - Legend: series (and bands) with a non-empty label, in a box at the top right of
//    the plot area, or at the corner/edge where it covers the fewest data pixels.
//  - Text: DejaVu Sans through draw.hpp, as given (mixed case).
//  - `xbands` (an addition to the basic chart): shaded vertical bands such as valid
//    ranges, drawn behind the data with dashed edges; ±infinity for an open end.
#pragma once

#include <snip_apps/draw.hpp>

#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace snip::apps::plot {

/// @brief One data series of a chart.
struct series {
    std::string label;        ///< legend text; empty = not in the legend
    std::vector<double> x, y; ///< same length
    draw::rgb color;
    enum kind_t { points, line, line_points, bars } kind = points;
    int size = 3;    ///< marker radius in px (points, line_points) or line thickness (line)
    char marker = 'o'; ///< 'o' filled circle, 'x' cross, '*' star, 's' filled square
};

/// @brief A shaded vertical band [lo, hi] in x data units (±infinity: open end).
struct band {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    draw::rgb color;
    std::string label; ///< legend text; empty = not in the legend
};

/// @brief A chart: axes, labels and the series drawn on them.
struct chart {
    std::string title, xlabel, ylabel;
    bool log_x = false, log_y = false;
    std::optional<double> xmin, xmax, ymin, ymax; ///< fixed axis ends (default: from the data)
    std::vector<series> data;
    std::vector<band> xbands; ///< shaded x ranges behind the data
};

/// @brief Draws `c` on a new `width` x `height` canvas. Throws snip::error naming the
/// chart when a series' x and y differ in length, the canvas is too small for the
/// axes, or a fixed axis end is unusable (not finite, <= 0 on a log axis, min >= max).
draw::canvas render(const chart& c, int width = 800, int height = 500);

/// @brief Tiles `panels` row by row, `columns` per row, each in a cell the size of the
/// largest panel (smaller panels centred), on white.
draw::canvas grid(const std::vector<draw::canvas>& panels, int columns);

} // namespace snip::apps::plot
