//! Sets of (protocol, port) pairs, as inclusive ranges per protocol.

use std::fmt;

use super::model::Protocol;

/// The lowest and highest port numbers.
pub const PORT_MIN: u16 = 1;
/// The highest port number.
pub const PORT_MAX: u16 = 65535;

/// A set of ports for each protocol, kept as sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: [Vec<(u16, u16)>; 3],
}

impl PortSet {
    /// No port at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every port of every protocol.
    pub fn all() -> Self {
        let mut s = Self::none();
        for p in Protocol::ALL {
            s.add(p, PORT_MIN, PORT_MAX);
        }
        s
    }

    /// Adds the ports `lo..=hi` of a protocol.
    pub fn add(&mut self, protocol: Protocol, lo: u16, hi: u16) {
        if lo > hi {
            return;
        }
        let ranges = &mut self.ranges[protocol.index()];
        // The ranges that touch or overlap lo..=hi are merged into one, in place.
        let first = ranges.partition_point(|&(_, b)| u32::from(b) + 1 < u32::from(lo));
        let last = ranges.partition_point(|&(a, _)| u32::from(a) <= u32::from(hi) + 1);
        if first == last {
            ranges.insert(first, (lo, hi));
            return;
        }
        let merged = (lo.min(ranges[first].0), hi.max(ranges[last - 1].1));
        ranges.splice(first..last, [merged]);
    }

    /// Adds every port of another set.
    pub fn union_with(&mut self, other: &PortSet) {
        for p in Protocol::ALL {
            for &(a, b) in &other.ranges[p.index()] {
                self.add(p, a, b);
            }
        }
    }

    /// The ports in both sets.
    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let mut out = PortSet::none();
        for p in Protocol::ALL {
            for &(a, b) in &self.ranges[p.index()] {
                for &(c, d) in &other.ranges[p.index()] {
                    out.add(p, a.max(c), b.min(d));
                }
            }
        }
        out
    }

    /// The ports of this set that `other` does not hold.
    pub fn minus(&self, other: &PortSet) -> PortSet {
        let mut out = PortSet::none();
        for p in Protocol::ALL {
            for &(a, b) in &self.ranges[p.index()] {
                let mut lo = u32::from(a);
                for &(c, d) in &other.ranges[p.index()] {
                    let (c, d) = (u32::from(c), u32::from(d));
                    if d < lo || c > u32::from(b) {
                        continue;
                    }
                    if c > lo {
                        out.add_wide(p, lo, c - 1);
                    }
                    lo = d + 1;
                }
                if lo <= u32::from(b) {
                    out.add_wide(p, lo, u32::from(b));
                }
            }
        }
        out
    }

    fn add_wide(&mut self, protocol: Protocol, lo: u32, hi: u32) {
        if let (Ok(lo), Ok(hi)) = (u16::try_from(lo), u16::try_from(hi)) {
            self.add(protocol, lo, hi);
        }
    }

    /// Whether the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.ranges.iter().all(Vec::is_empty)
    }

    /// Whether the set holds every port of every protocol.
    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }

    /// Whether the set holds a port.
    pub fn contains(&self, port: u16, protocol: Protocol) -> bool {
        self.ranges[protocol.index()]
            .iter()
            .any(|&(a, b)| a <= port && port <= b)
    }

    /// The ranges of one protocol.
    pub fn ranges(&self, protocol: Protocol) -> &[(u16, u16)] {
        &self.ranges[protocol.index()]
    }
}

/// `all`, `none`, or `TCP 80-81,443; UDP all`.
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for p in Protocol::ALL {
            let ranges = self.ranges(p);
            if ranges.is_empty() {
                continue;
            }
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{p} ")?;
            if ranges == [(PORT_MIN, PORT_MAX)] {
                f.write_str("all")?;
                continue;
            }
            for (i, &(a, b)) in ranges.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                if a == b {
                    write!(f, "{a}")?;
                } else {
                    write!(f, "{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_minus_another_keeps_what_the_other_lacks() {
        let mut a = PortSet::none();
        a.add(Protocol::Tcp, 80, 90);
        a.add(Protocol::Tcp, 443, 443);
        a.add(Protocol::Udp, 53, 53);
        let mut b = PortSet::none();
        b.add(Protocol::Tcp, 82, 84);
        b.add(Protocol::Tcp, 90, 500);
        assert_eq!(a.minus(&b).to_string(), "TCP 80-81,85-89; UDP 53");
        assert!(a.minus(&a).is_empty());
        assert!(!PortSet::all().minus(&a).contains(80, Protocol::Tcp));
        assert!(PortSet::all().minus(&a).contains(79, Protocol::Tcp));
        assert!(PortSet::all().minus(&a).contains(65535, Protocol::Tcp));
        assert_eq!(a.minus(&PortSet::none()), a);
        let mut edge = PortSet::none();
        edge.add(Protocol::Tcp, 1, 65535);
        let mut top = PortSet::none();
        top.add(Protocol::Tcp, 65535, 65535);
        assert_eq!(edge.minus(&top).to_string(), "TCP 1-65534");
    }

    #[test]
    fn ranges_merge_and_intersect() {
        let mut a = PortSet::none();
        a.add(Protocol::Tcp, 80, 81);
        a.add(Protocol::Tcp, 82, 90);
        a.add(Protocol::Tcp, 443, 443);
        assert_eq!(a.ranges(Protocol::Tcp), &[(80, 90), (443, 443)]);
        let mut b = PortSet::none();
        b.add(Protocol::Tcp, 85, 500);
        b.add(Protocol::Udp, 53, 53);
        let both = a.intersect(&b);
        assert_eq!(both.to_string(), "TCP 85-90,443");
        assert!(both.contains(443, Protocol::Tcp));
        assert!(!both.contains(53, Protocol::Udp));
        assert_eq!(PortSet::all().to_string(), "all");
        assert_eq!(PortSet::none().to_string(), "none");
        b.union_with(&a);
        assert_eq!(b.to_string(), "TCP 80-500; UDP 53");
        let mut c = PortSet::none();
        for (lo, hi) in [
            (10, 20),
            (30, 40),
            (50, 60),
            (5, 6),
            (21, 29),
            (45, 45),
            (61, 61),
        ] {
            c.add(Protocol::Udp, lo, hi);
        }
        assert_eq!(c.to_string(), "UDP 5-6,10-40,45,50-61");
        c.add(Protocol::Udp, 1, 65535);
        assert_eq!(c.ranges(Protocol::Udp), &[(1, 65535)]);
    }
}
