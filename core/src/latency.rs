//! HDR latency histograms with the bounds Gauntlet uses everywhere.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded exactly: one hour. Longer values saturate to it.
pub const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, from 1 µs to one hour, with `sigfig` significant
/// digits (2 keeps one under 16 KiB, 3 is ~190 KiB).
pub fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, sigfig).expect("static bounds are valid")
}

/// Records `latency` into a histogram made by [`histogram`]; never allocates, never fails.
#[inline]
pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_MICROS);
    h.saturating_record(micros);
}

/// The latency at `quantile` (0..=1), or `None` when nothing was recorded.
pub fn quantile(h: &Histogram<u64>, quantile: f64) -> Option<Duration> {
    (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(quantile)))
}
