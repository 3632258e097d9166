//! Floats written by the JSON writer against the peers themselves: every double goes
//! through `json::to_string` / `json::to_string_python` and through `node` (`String(x)`)
//! and `python3` (`repr(x)`), and the bytes must be equal (issue 19, item 2).
//!
//! `node` and `python3` must be on `PATH` (`SIO_PYTHON` overrides the Python
//! interpreter); without them the test fails rather than skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use socketio_adapter_core::Value;
use socketio_adapter_core::json;

/// Random bit patterns, random values of assorted magnitudes, and the doubles around
/// the cases known to be hard (ties, extremes, the exponent switch points).
const RANDOM_BITS: usize = 60_000;
const RANDOM_MAGNITUDES: usize = 60_000;

const NODE_SCRIPT: &str = r#"
const lines = require('fs').readFileSync(0, 'utf8').split('\n');
const buf = Buffer.alloc(8);
const out = [];
for (const h of lines) {
  if (h.length === 0) continue;
  buf.write(h, 'hex');
  out.push(String(buf.readDoubleBE(0)));
}
process.stdout.write(out.join('\n') + '\n');
"#;

const PYTHON_SCRIPT: &str = r#"
import struct, sys
out = []
for h in sys.stdin.read().split('\n'):
    if h:
        out.append(repr(struct.unpack('>d', bytes.fromhex(h))[0]))
sys.stdout.write('\n'.join(out) + '\n')
"#;

/// xorshift64*: fixed seed, same sequence on every run and every platform.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn special_cases() -> Vec<f64> {
    let mut v = vec![
        863_703_680_224_238.2,
        5e-324,
        1e-323,
        2.225_073_858_507_201e-308,
        2.225_073_858_507_201_4e-308,
        1.797_693_134_862_315_7e308,
        0.1 + 0.2,
        0.1,
        1.0 / 3.0,
        1e21,
        1e20,
        1e-7,
        1e-6,
        1.5e-7,
        1e-5,
        1e-4,
        1e15,
        1e16,
        1e17,
        123_456_789_012_345_680_000.0,
        9_007_199_254_740_993.0,
        9_007_199_254_740_992.0,
        4_503_599_627_370_496.5,
        2f64.powi(63),
        2f64.powi(64),
        2f64.powi(-1074),
        f64::EPSILON,
        f64::MIN_POSITIVE,
        f64::MAX,
        1.0,
        2.0,
        0.5,
        100.0,
        123.456,
        0.0,
        -0.0,
    ];
    // the doubles on either side of every power of ten (the exponent switch points of
    // both peers among them) and of a few round numbers around them
    for e in -325..=309 {
        for base in [1.0, 1.5, 9.999_999_999_999_999, 5.0] {
            let x: f64 = format!("{base}e{e}").parse().unwrap();
            if x.is_finite() && x != 0.0 {
                let b = x.to_bits();
                v.extend([x, f64::from_bits(b - 1), f64::from_bits(b + 1)]);
            }
        }
    }
    v
}

fn inputs() -> Vec<f64> {
    let mut rng = XorShift(0x5EED_F10A_7519_2024);
    let mut v = special_cases();
    let target = v.len() + RANDOM_BITS;
    while v.len() < target {
        let x = f64::from_bits(rng.next());
        if x.is_finite() {
            v.push(x);
        }
    }
    for _ in 0..RANDOM_MAGNITUDES {
        // a mantissa in [1, 10) with a few or many digits, times 10^e for e in [-330, 310]
        let mut m = 1.0 + 9.0 * rng.unit();
        match rng.next() % 4 {
            0 => m = (m * 10.0).round() / 10.0,
            1 => m = (m * 1e6).round() / 1e6,
            2 => m = (m * 1e15).round() / 1e15,
            _ => {}
        }
        let e = (rng.next() % 641) as i32 - 330;
        let x: f64 = format!("{m}e{e}").parse().unwrap();
        let x = if rng.next() & 1 == 0 { x } else { -x };
        if x.is_finite() {
            v.push(x);
        }
    }
    // the special cases again, negated
    v.extend(special_cases().iter().map(|x| -x));
    v
}

/// Runs `program args..`, feeding one hex bit pattern per line, and returns its lines.
fn run_peer(program: &str, args: &[&str], hex: &str, expected_lines: usize) -> Vec<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "float_differential compares against the peers' own formatting and needs \
                 `{program}` (node and python3 on PATH; SIO_PYTHON overrides python3), \
                 which could not be started: {e}"
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    let hex = hex.to_owned();
    // write on a thread of its own: the peer's output could fill the pipe before it
    // has read all of its input
    let writer = std::thread::spawn(move || stdin.write_all(hex.as_bytes()));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "`{program}` exited with {status}");
    let lines: Vec<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), expected_lines, "`{program}` printed a line per input");
    lines
}

/// The number of doubles whose bytes differ from the peer's, and a report of the first.
fn compare(peer: &str, inputs: &[f64], theirs: &[String], ours: impl Fn(f64) -> String) -> (usize, String) {
    let mismatches: Vec<String> = inputs
        .iter()
        .zip(theirs)
        .filter_map(|(x, want)| {
            let got = ours(*x);
            (got != *want).then(|| format!("  {:016x}: {peer} {want}, we {got}", x.to_bits()))
        })
        .collect();
    let report = if mismatches.is_empty() {
        String::new()
    } else {
        let first = mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
        format!("{} of {} doubles differ from {peer}; the first:\n{first}\n", mismatches.len(), inputs.len())
    };
    (mismatches.len(), report)
}

#[test]
fn floats_are_byte_exact_with_node_and_python() {
    let inputs = inputs();
    assert!(inputs.len() >= 100_000, "{} inputs", inputs.len());
    let hex: String = inputs.iter().map(|x| format!("{:016x}\n", x.to_bits())).collect();

    let node = run_peer("node", &["-e", NODE_SCRIPT], &hex, inputs.len());
    let python_bin = std::env::var("SIO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let python = run_peer(&python_bin, &["-c", PYTHON_SCRIPT], &hex, inputs.len());

    let (node_bad, node_report) = compare("node", &inputs, &node, |x| json::to_string(&Value::Float(x)));
    let (python_bad, python_report) = compare("python", &inputs, &python, |x| json::to_string_python(&Value::Float(x)));
    assert!(
        node_bad == 0 && python_bad == 0,
        "of {} doubles, {node_bad} differ from node's String(x) and {python_bad} from python's repr(x)\n\
         {node_report}{python_report}",
        inputs.len()
    );
}
