//! Medians and percentiles for the benches and reports: one definition, so every table in
//! BENCHMARKS.md means the same thing by "p99". Nearest rank: the value at index
//! `round((n - 1) × q)` of the sorted values, so the median of an even count is the upper
//! middle value and `q = 1` is the maximum. No interpolation: every figure printed is a
//! value that was measured.
//!
//! ```
//! use evloop_support::stats::{median, percentile};
//! assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
//! assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 0.99), 4.0);
//! assert!(median(&[]).is_nan());
//! ```

/// The nearest-rank `q`-quantile (`q` in 0..=1) of values already sorted ascending;
/// `None` when there are none.
pub fn percentile_sorted<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    let at = (last as f64 * q.clamp(0.0, 1.0)).round() as usize;
    Some(sorted[at.min(last)])
}

/// The nearest-rank `q`-quantile of `values` in any order; NaN when empty.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    percentile_sorted(&sorted(values), q).unwrap_or(f64::NAN)
}

/// The median (the upper middle value of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// A sorted copy (total order: NaNs last), for taking several percentiles of one sample.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut copy = values.to_vec();
    copy.sort_by(f64::total_cmp);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_a_measured_value() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 0.5), 51.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile_sorted(&[7u64], 0.99), Some(7));
        assert_eq!(percentile_sorted::<u64>(&[], 0.5), None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_upper_middle() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&[2.0, 1.0]), 2.0);
    }
}
