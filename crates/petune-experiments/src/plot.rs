//! Line plots with a mean ± std band (the LPT paper's Figures 2, 4 and 5), written as
//! PNG and SVG with `plotters`. Text needs a TrueType font: `PETUNE_FONT`, else
//! DejaVu Sans or Liberation Sans from the usual system folders; without one the plots
//! are drawn without text and a warning says so.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{ExperimentError, Result};

/// One line: points `(x, mean, std)`.
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, mean, std)` sorted by x.
    pub points: Vec<(f64, f64, f64)>,
}

/// Labels of a plot.
pub struct Labels<'a> {
    /// Title.
    pub title: &'a str,
    /// x axis.
    pub x: &'a str,
    /// y axis.
    pub y: &'a str,
}

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a font once; false when none was found.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let from_env = std::env::var("PETUNE_FONT").ok();
        let path = from_env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES)
            .find(|p| Path::new(p).is_file());
        let Some(bytes) = path.and_then(|p| std::fs::read(p).ok()) else {
            eprintln!(
                "warning: no TrueType font found (set PETUNE_FONT); plots are drawn without text"
            );
            return false;
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, m, s) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(m - s);
        y1 = y1.max(m + s);
    }
    let pad = ((y1 - y0) * 0.1).max(1e-3);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    (x0, x1, y0 - pad, y1 + pad)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &[Series],
    labels: &Labels,
    text: bool,
    file: &Path,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ExperimentError::Plot {
        path: file.to_path_buf(),
        msg: format!("{e:?}"),
    };
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1, y0, y1) = bounds(series);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(labels.title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?;
    let mut mesh = chart.configure_mesh();
    // Integer axes (layers, lengths, steps) get integer tick labels only.
    let integral = series.iter().all(|s| s.points.iter().all(|p| p.0.fract() == 0.0));
    let int_ticks = |x: &f64| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() };
    if integral {
        mesh.x_label_formatter(&int_ticks);
    }
    if text {
        mesh.x_desc(labels.x).y_desc(labels.y);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut band: Vec<(f64, f64)> = s.points.iter().map(|&(x, m, sd)| (x, m + sd)).collect();
        band.extend(s.points.iter().rev().map(|&(x, m, sd)| (x, m - sd)));
        chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18)))).map_err(err)?;
        chart
            .draw_series(s.points.iter().map(|&(x, m, _)| Circle::new((x, m), 3, color.filled())))
            .map_err(err)?;
        let line = s.points.iter().map(|&(x, m, _)| (x, m));
        let drawn = chart.draw_series(LineSeries::new(line, color.stroke_width(2))).map_err(err)?;
        if text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `stem.png` and `stem.svg`.
pub fn line_plot(stem: &Path, series: &[Series], labels: &Labels) -> Result<()> {
    if series.iter().all(|s| s.points.is_empty()) {
        return Err(ExperimentError::Plot {
            path: stem.to_path_buf(),
            msg: "nothing to plot".into(),
        });
    }
    let text = font_ready();
    let size = (900, 560);
    let png = stem.with_extension("png");
    draw(BitMapBackend::new(&png, size).into_drawing_area(), series, labels, text, &png)?;
    let svg = stem.with_extension("svg");
    draw(SVGBackend::new(&svg, size).into_drawing_area(), series, labels, text, &svg)?;
    Ok(())
}
