//! Charts as inline SVG text: horizontal bar charts and stacked time series, with axes, tick
//! labels and legends. Pure functions of their input (same data, same bytes), no scripts, no
//! external fonts or styles, so a report renders the same offline and snapshots are stable.

use std::fmt::Write as _;

use crate::escape;

/// Colours of series and bars, in order (colour-blind friendly, Okabe–Ito based).
pub const PALETTE: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
    "#882255", "#999999",
];
/// Most bars in one chart; the caller folds the rest into its table.
pub const BARS_MAX: usize = 25;
/// Most series in one stacked chart.
pub const SERIES_MAX: usize = 10;

const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";

/// Round `x` up to 1, 2 or 5 times a power of ten.
pub fn nice_ceiling(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= x - 1e-9 {
            return m * p;
        }
    }
    10.0 * p
}

/// Ticks 0..=top in four equal steps, `top` a nice ceiling of `max`.
fn ticks(max: f64) -> (f64, Vec<f64>) {
    let step = nice_ceiling(max / 4.0).max(if max <= 4.0 { 1.0 } else { 0.0 });
    let top = (max / step).ceil().max(1.0) * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

/// A number as a short label: 950, 1.2k, 3.4M.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn truncate_label(s: &str, chars_max: usize) -> String {
    if s.chars().count() <= chars_max {
        s.to_string()
    } else {
        let head: String = s.chars().take(chars_max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// A horizontal bar chart, one bar per item (at most [`BARS_MAX`]), value axis at the bottom.
pub fn bar_chart(title: &str, items: &[(String, f64)], value_label: &str) -> String {
    let items = &items[..items.len().min(BARS_MAX)];
    let width = 720.0;
    let label_w = 230.0;
    let right = 60.0;
    let top = 34.0;
    let row = 22.0;
    let plot_w = width - label_w - right;
    let plot_h = row * items.len().max(1) as f64;
    let height = top + plot_h + 44.0;
    let max = items.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let (axis_top, tick_values) = ticks(max);
    let x_of = |v: f64| label_w + v / axis_top * plot_w;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart bar-chart\" role=\"img\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" {FONT}>\
         <title>{t}</title>\
         <text x=\"0\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        t = escape(title)
    );
    for t in &tick_values {
        let x = x_of(*t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" fill=\"#555\">{l}</text>",
            y2 = top + plot_h,
            ty = top + plot_h + 16.0,
            l = short_number(*t)
        );
    }
    for (i, (label, v)) in items.iter().enumerate() {
        let y = top + i as f64 * row;
        let w = (x_of(*v) - label_w).max(0.0);
        let _ = write!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\">{l}</text>\
             <rect class=\"bar\" x=\"{label_w}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" \
             fill=\"{c}\"><title>{full}: {v}</title></rect>\
             <text x=\"{vx:.1}\" y=\"{ly:.1}\" fill=\"#333\">{vl}</text>",
            lx = label_w - 6.0,
            ly = y + row * 0.68,
            l = escape(&truncate_label(label, 34)),
            by = y + 3.0,
            bh = row - 6.0,
            c = PALETTE[0],
            full = escape(label),
            vx = label_w + w + 4.0,
            vl = short_number(*v),
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{label_w}\" y1=\"{top}\" x2=\"{label_w}\" y2=\"{y2:.1}\" stroke=\"#333\"/>\
         <line x1=\"{label_w}\" y1=\"{y2:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#333\"/>\
         <text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" fill=\"#555\">{vl}</text></svg>",
        y2 = top + plot_h,
        x2 = label_w + plot_w,
        cx = label_w + plot_w / 2.0,
        ly = top + plot_h + 34.0,
        vl = escape(value_label),
    );
    s
}

/// A stacked area chart over time: `bins_ms` are the bin starts, each series has one value
/// per bin. At most [`SERIES_MAX`] series (the caller folds the rest into "other").
pub fn stacked_series(
    title: &str,
    bins_ms: &[i64],
    series: &[(String, Vec<f64>)],
    bin_label: impl Fn(i64) -> String,
    value_label: &str,
) -> String {
    let series = &series[..series.len().min(SERIES_MAX)];
    let width = 720.0;
    let left = 56.0;
    let right = 170.0;
    let top = 34.0;
    let plot_h = 220.0;
    let plot_w = width - left - right;
    let height = top + plot_h + 56.0;
    let n = bins_ms.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let (axis_top, tick_values) = ticks(max);
    let x_of = |i: usize| {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + i as f64 / (n - 1) as f64 * plot_w
        }
    };
    let y_of = |v: f64| top + plot_h - v / axis_top * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart series-chart\" role=\"img\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" {FONT}>\
         <title>{t}</title>\
         <text x=\"0\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        t = escape(title)
    );
    for t in &tick_values {
        let y = y_of(*t);
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" fill=\"#555\">{l}</text>",
            x2 = left + plot_w,
            tx = left - 6.0,
            ty = y + 4.0,
            l = short_number(*t)
        );
    }
    // Areas, bottom series first: each band runs along its top edge and back along the one
    // below it.
    let mut base = vec![0.0; n];
    for (k, (name, values)) in series.iter().enumerate() {
        let upper: Vec<f64> = (0..n)
            .map(|i| base[i] + values.get(i).copied().unwrap_or(0.0))
            .collect();
        let mut d = String::new();
        if n == 1 {
            // One bin: a bar-like band so the single value is visible.
            let (x0, x1) = (left + plot_w * 0.4, left + plot_w * 0.6);
            let _ = write!(
                d,
                "M{x0:.1},{b:.1}L{x0:.1},{u:.1}L{x1:.1},{u:.1}L{x1:.1},{b:.1}Z",
                b = y_of(base[0]),
                u = y_of(upper[0])
            );
        } else {
            for (i, u) in upper.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if i == 0 { 'M' } else { 'L' },
                    x_of(i),
                    y_of(*u)
                );
            }
            for i in (0..n).rev() {
                let _ = write!(d, "L{:.1},{:.1}", x_of(i), y_of(base[i]));
            }
            d.push('Z');
        }
        let c = PALETTE[k % PALETTE.len()];
        let _ = write!(
            s,
            "<path class=\"area\" d=\"{d}\" fill=\"{c}\" fill-opacity=\"0.75\" stroke=\"{c}\" \
             stroke-width=\"1\"><title>{}</title></path>",
            escape(name)
        );
        let ly = top + 10.0 + k as f64 * 18.0;
        let lx = left + plot_w + 14.0;
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{ry:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/>\
             <text x=\"{tx:.1}\" y=\"{ly:.1}\">{}</text>",
            escape(&truncate_label(name, 20)),
            ry = ly - 9.0,
            tx = lx + 14.0,
        );
        base = upper;
    }
    // X labels: at most eight, evenly spread.
    let every = n.div_ceil(8).max(1);
    for i in (0..n).step_by(every) {
        let x = x_of(i);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" stroke=\"#333\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" fill=\"#555\">{l}</text>",
            y1 = top + plot_h,
            y2 = top + plot_h + 4.0,
            ty = top + plot_h + 18.0,
            l = escape(&bin_label(bins_ms[i]))
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{y2:.1}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" y1=\"{y2:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#333\"/>\
         <text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" fill=\"#555\">{vl}</text></svg>",
        y2 = top + plot_h,
        x2 = left + plot_w,
        cx = left + plot_w / 2.0,
        ly = top + plot_h + 40.0,
        vl = escape(value_label),
    );
    s
}

/// A text sparkline (`▁▂▃▅▇`) of `values`, scaled to their maximum.
pub fn sparkline(values: &[f64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 || *v <= 0.0 {
                ' '
            } else {
                BLOCKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(50.0), 50.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        let (top, t) = ticks(37.0);
        assert_eq!(top, 40.0);
        assert_eq!(t, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        let (top, t) = ticks(3.0);
        assert_eq!(top, 3.0);
        assert_eq!(t.len(), 4);
        assert_eq!(short_number(1234.0), "1.2k");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(7.0), "7");
    }

    #[test]
    fn bars_scale_to_the_axis_and_escape_labels() {
        let svg = bar_chart(
            "Top <principals>",
            &[("alice".into(), 40.0), ("b&b".into(), 10.0)],
            "events",
        );
        assert!(svg.contains("Top &lt;principals&gt;"));
        assert!(svg.contains("b&amp;b"));
        // 40 of an axis topped at 40 spans the whole plot (720 - 230 - 60 = 430).
        assert!(svg.contains("width=\"430.0\""), "{svg}");
        assert!(svg.contains("width=\"107.5\""), "{svg}");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
    }

    #[test]
    fn stacked_areas_close_and_stack() {
        let svg = stacked_series(
            "Activity",
            &[0, 3_600_000, 7_200_000],
            &[
                ("a".into(), vec![1.0, 2.0, 3.0]),
                ("b".into(), vec![1.0, 1.0, 1.0]),
            ],
            |ms| format!("{}h", ms / 3_600_000),
            "events per hour",
        );
        assert_eq!(svg.matches("<path class=\"area\"").count(), 2);
        assert_eq!(svg.matches('Z').count(), 2);
        assert!(svg.contains(">2h<"));
        let one = stacked_series("x", &[0], &[("a".into(), vec![5.0])], |_| "t".into(), "");
        assert!(one.contains("<path class=\"area\""));
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0]), " ▃▅█");
    }
}
