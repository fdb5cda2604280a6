//! What happened to one attempt, and whether it counts against the server.
//!
//! Every attempt ends in exactly one [`Outcome`]. A [`Classifier`] turns it into a
//! [`Verdict`] for the mechanisms that judge servers (breaker, outlier detection, health):
//! transport errors, timeouts and server-side JSON-RPC errors are failures; a tool result with
//! `isError: true` is the tool answering "no" through a working server, so by default it is a
//! success for the server (the caller still sees the error). Calls cancelled by the caller and
//! calls the client refused locally say nothing about the server and are ignored.

use std::fmt;

/// How one attempt to one server ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The server answered with a result.
    Success,
    /// The server answered with a tool result marked `isError: true`.
    ToolError,
    /// The server answered with a JSON-RPC error (`code`).
    RpcError(i32),
    /// No answer before the attempt's deadline.
    Timeout,
    /// The connection failed or closed (refused, reset, transport closed).
    Transport,
    /// The answer could not be decoded, or broke a limit (size, schema).
    Malformed,
    /// The caller cancelled the attempt (e.g. the loser of a hedge).
    Cancelled,
    /// The client did not send it (no permit, queue full, no server).
    Rejected,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::ToolError => f.write_str("tool-error"),
            Outcome::RpcError(code) => write!(f, "rpc-error({code})"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Transport => f.write_str("transport"),
            Outcome::Malformed => f.write_str("malformed"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::Rejected => f.write_str("rejected"),
        }
    }
}

/// What an outcome says about the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server worked.
    Success,
    /// The server failed.
    Failure,
    /// Nothing can be concluded.
    Ignored,
}

/// JSON-RPC codes that blame the caller, not the server: invalid request, method not found,
/// invalid params. The server is working correctly when it returns them.
pub const CALLER_ERROR_CODES: [i32; 3] = [-32600, -32601, -32602];

/// Decides what an outcome says about the server. The default blames the server only for
/// transport errors, timeouts, garbage and server-side JSON-RPC errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classifier {
    /// Count `isError: true` tool results as failures. Default `false`: the tool answered.
    pub tool_error_is_failure: bool,
    /// Count JSON-RPC errors that blame the caller ([`CALLER_ERROR_CODES`]) as failures.
    /// Default `false`.
    pub caller_errors_are_failures: bool,
}

impl Classifier {
    /// The verdict on `outcome`.
    #[inline]
    pub fn classify(&self, outcome: Outcome) -> Verdict {
        match outcome {
            Outcome::Success => Verdict::Success,
            Outcome::ToolError if self.tool_error_is_failure => Verdict::Failure,
            Outcome::ToolError => Verdict::Success,
            Outcome::RpcError(code) if CALLER_ERROR_CODES.contains(&code) && !self.caller_errors_are_failures => {
                Verdict::Success
            }
            Outcome::RpcError(_) | Outcome::Timeout | Outcome::Transport | Outcome::Malformed => Verdict::Failure,
            Outcome::Cancelled | Outcome::Rejected => Verdict::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_error_is_not_a_server_failure_by_default() {
        assert_eq!(Classifier::default().classify(Outcome::ToolError), Verdict::Success);
        let strict = Classifier { tool_error_is_failure: true, ..Classifier::default() };
        assert_eq!(strict.classify(Outcome::ToolError), Verdict::Failure);
    }

    #[test]
    fn transport_timeouts_and_server_errors_are_failures() {
        let c = Classifier::default();
        for o in [Outcome::Transport, Outcome::Timeout, Outcome::RpcError(-32603), Outcome::Malformed] {
            assert_eq!(c.classify(o), Verdict::Failure, "{o}");
        }
    }

    #[test]
    fn caller_mistakes_and_local_decisions_do_not_blame_the_server() {
        let c = Classifier::default();
        assert_eq!(c.classify(Outcome::RpcError(-32602)), Verdict::Success);
        assert_eq!(c.classify(Outcome::Cancelled), Verdict::Ignored);
        assert_eq!(c.classify(Outcome::Rejected), Verdict::Ignored);
    }
}
