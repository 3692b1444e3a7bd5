//! The matrix as text: a truth table per port (the e2e suite's printout, `.` allowed, `X`
//! blocked; rows are sources, columns destinations) and a list of what each pair allows.

use std::fmt::Write as _;

use super::eval::{Pair, Reachability};
use super::model::Protocol;

impl Reachability {
    /// The truth table of connections on one port, columns aligned with spaces.
    pub fn truth_table(&self, port: u16, protocol: Protocol) -> String {
        let width = self
            .peers
            .iter()
            .map(|p| p.chars().count())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = String::new();
        let mut line = format!("{:<width$}", "-");
        for to in &self.peers {
            line.push(' ');
            line.push_str(&format!("{to:<width$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for (i, from) in self.peers.iter().enumerate() {
            let mut line = format!("{from:<width$}");
            for j in 0..self.peers.len() {
                let allowed = self.pairs[i * self.peers.len() + j]
                    .allowed
                    .contains(port, protocol);
                line.push(' ');
                line.push_str(&format!("{:<width$}", if allowed { "." } else { "X" }));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// One line per ordered pair of distinct peers: the ports it allows, or what blocks it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (from, to, pair) in self.pairs() {
            if from == to {
                continue;
            }
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{from} -> {to}: {}", explain(from, to, pair));
        }
        out
    }
}

/// `all`, `TCP 80`, or `blocked: egress of A (ns/policy), ingress of B (ns/policy)`.
pub fn explain(from: &str, to: &str, pair: &Pair) -> String {
    if !pair.allowed.is_empty() {
        return pair.allowed.to_string();
    }
    let mut parts = Vec::new();
    if pair.egress.allowed.is_empty() {
        parts.push(format!(
            "egress of {from} ({})",
            pair.egress.isolated_by.join(", ")
        ));
    }
    if pair.ingress.allowed.is_empty() {
        parts.push(format!(
            "ingress of {to} ({})",
            pair.ingress.isolated_by.join(", ")
        ));
    }
    if parts.is_empty() {
        parts.push(format!(
            "egress of {from} allows {} ({}), ingress of {to} allows {} ({})",
            pair.egress.allowed,
            pair.egress.isolated_by.join(", "),
            pair.ingress.allowed,
            pair.ingress.isolated_by.join(", ")
        ));
    }
    format!("blocked: {}", parts.join("; "))
}
