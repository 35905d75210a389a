//! The repository's pictures: grouped bar charts (the lab's `--plot`) and line charts (the
//! echo benchmark's throughput by connections, `examples/chart.rs`) as SVG, drawn with
//! `plotters` (its SVG backend only: no system fonts or libraries; text is left to the SVG
//! viewer's sans-serif). No Python is needed to redraw a figure.
//!
//! A chart is a stack of [`Panel`]s sharing one title. In a panel each category (a model)
//! has one bar per [`Series`] (a language), side by side, the value written above it, and an
//! optional marker (the ideal) drawn as a black tick across the bar. `plotters` draws the
//! axes, the grid and the category labels; the bars are placed in pixels inside its
//! plotting area, which keeps them exactly centred in their category.

use std::io;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One series of bars: a value (and optionally a marker) per category, `None` for a gap.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub markers: Vec<Option<f64>>,
}

/// One chart of grouped bars.
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

/// Bar colours by series position: Rust's orange, Python's blue, then more.
const COLOURS: [RGBColor; 4] =
    [RGBColor(206, 92, 43), RGBColor(55, 118, 171), RGBColor(90, 160, 90), RGBColor(150, 110, 180)];

/// Draws `panels`, one above the other, into the SVG file `path`.
pub fn grouped_bars(path: &Path, title: &str, panels: &[Panel]) -> io::Result<()> {
    let height = 60 + 420 * panels.len() as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    written(path, &root, draw(&root, title, panels))
}

/// The drawing's outcome, then the file written: either error with the file's name.
fn written<DB: DrawingBackend>(
    path: &Path,
    root: &DrawingArea<DB, Shift>,
    drawn: Result<(), Failure>,
) -> io::Result<()>
where
    DB::ErrorType: 'static,
{
    let naming_the_file = |e: &dyn std::fmt::Display| io::Error::other(format!("{}: {e}", path.display()));
    drawn.map_err(|e| naming_the_file(&e))?;
    root.present().map_err(|e| naming_the_file(&e))
}

type Failure = Box<dyn std::error::Error>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    let count = panel.categories.len().max(1);
    let all = panel.series.iter().flat_map(|s| s.values.iter().chain(&s.markers)).flatten();
    let top = all.fold(0.0f64, |top, &v| top.max(v)) * 1.15;
    let top = if top > 0.0 { top } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        // A segmented range 0..n has n + 1 segments (its end is a key too).
        .build_cartesian_2d((0..count - 1).into_segmented(), 0.0..top)?;
    let categories = panel.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count)
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(i) => categories.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_style(("sans-serif", 12))
        .y_desc(panel.y_label.as_str())
        .y_label_formatter(&|v| match top {
            t if t >= 5.0 => format!("{v:.0}"),
            t if t >= 0.5 => format!("{v:.1}"),
            _ => format!("{v:.3}"),
        })
        .draw()?;

    // The bars, in pixels inside the plotting area: plotters says where category i's
    // centre is; the series share the middle 80% of the distance between two centres.
    let plot = chart.plotting_area().strip_coord_spec();
    let (left, _) = chart.plotting_area().get_pixel_range();
    let centre = |i: usize| f64::from(chart.backend_coord(&(SegmentValue::CenterOf(i), 0.0)).0 - left.start);
    let (_, height) = plot.dim_in_pixel();
    let height = f64::from(height);
    let y = |value: f64| (height - value / top * height).round() as i32;
    let lanes = panel.series.len().max(1) as f64;
    let slot = if count > 1 { centre(1) - centre(0) } else { f64::from(plot.dim_in_pixel().0) };
    for (s, series) in panel.series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        for i in 0..count {
            let x0 = (centre(i) - slot * 0.4 + s as f64 * slot * 0.8 / lanes).round() as i32;
            let x1 = (f64::from(x0) + slot * 0.8 / lanes - 2.0).round() as i32;
            if let Some(Some(value)) = series.values.get(i) {
                plot.draw(&Rectangle::new([(x0, y(*value)), (x1, y(0.0))], colour.filled()))?;
                let label = match top {
                    t if t >= 20.0 => format!("{value:.0}"),
                    t if t >= 0.5 => format!("{value:.2}"),
                    _ => format!("{value:.4}"),
                };
                let style = TextStyle::from(("sans-serif", 11)).pos(Pos::new(HPos::Center, VPos::Bottom));
                plot.draw(&Text::new(label, ((x0 + x1) / 2, y(*value) - 2), style))?;
            }
            if let Some(Some(marker)) = series.markers.get(i) {
                let style = BLACK.stroke_width(3);
                plot.draw(&PathElement::new(vec![(x0 - 2, y(*marker)), (x1 + 2, y(*marker))], style))?;
            }
        }
    }
    // The legend, top right of the plotting area.
    let right = plot.dim_in_pixel().0 as i32;
    for (s, series) in panel.series.iter().enumerate() {
        let (x, y) = (right - 110 * (panel.series.len() - s) as i32, 8);
        plot.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], COLOURS[s % COLOURS.len()].filled()))?;
        plot.draw(&Text::new(series.name.clone(), (x + 20, y + 1), ("sans-serif", 14)))?;
    }
    Ok(())
}

/// Draws each series as a line over the categories (evenly spaced, in order), one point
/// per value, into the SVG file `path`: one panel, its title and axis labels from `panel`.
pub fn lines(path: &Path, x_label: &str, panel: &Panel) -> io::Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    // Numbers on the x axis (connections: 1, 50, 500, 1000) are drawn to scale, on a log
    // axis; drawn as evenly spaced categories they would bend every line.
    let numbers: Option<Vec<f64>> =
        panel.categories.iter().map(|c| c.parse::<f64>().ok().filter(|&x| x > 0.0)).collect();
    let drawn = match numbers {
        Some(xs) if xs.len() > 1 => draw_lines_to_scale(&root, x_label, panel, &xs),
        _ => draw_lines(&root, x_label, panel),
    };
    written(path, &root, drawn)
}

/// [`lines`] over numeric x values, on a logarithmic axis.
fn draw_lines_to_scale<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x_label: &str,
    panel: &Panel,
    xs: &[f64],
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (low, high) = xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let top = line_chart_top(panel);
    let mut chart = ChartBuilder::on(root)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((low * 0.8..high * 1.25).log_scale(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(format!("{x_label} (log scale)"))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(panel.y_label.as_str())
        .y_label_formatter(&|&v| y_tick(top, v))
        .draw()?;
    draw_series(&mut chart, panel, xs)
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x_label: &str,
    panel: &Panel,
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let count = panel.categories.len().max(1);
    let top = line_chart_top(panel);
    let mut chart = ChartBuilder::on(root)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..count as f64 - 0.5, 0.0..top)?;
    let categories = panel.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count)
        // Whole positions are the categories; plotters may ask for labels in between.
        .x_label_formatter(&|x| {
            let at = x.round();
            if (x - at).abs() < 1e-6 && at >= 0.0 {
                categories.get(at as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc(x_label)
        .y_desc(panel.y_label.as_str())
        .y_label_formatter(&|&v| y_tick(top, v))
        .draw()?;
    let positions: Vec<f64> = (0..count).map(|i| i as f64).collect();
    draw_series(&mut chart, panel, &positions)
}

/// Each series as a line through its points at `xs`, with dots and a legend: the part of a
/// line chart that is the same whether x is categories or numbers to scale.
fn draw_series<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    panel: &Panel,
    xs: &[f64],
) -> Result<(), Failure>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
{
    for (s, series) in panel.series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let points: Vec<(f64, f64)> =
            series.values.iter().zip(xs).filter_map(|(v, &x)| v.map(|v| (x, v))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(series.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|point| Circle::new(point, 3, colour.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.9)).draw()?;
    Ok(())
}

/// The top of a line chart's y axis: the largest value plus room for the legend.
fn line_chart_top(panel: &Panel) -> f64 {
    let top =
        panel.series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |t, &v| t.max(v)) * 1.15;
    if top > 0.0 {
        top
    } else {
        1.0
    }
}

/// A y tick: thousands as `12k` on a large axis, one decimal on a small one.
fn y_tick(top: f64, v: f64) -> String {
    if top >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else {
        format!("{v:.1}")
    }
}
