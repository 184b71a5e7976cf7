//! Test models, written as ONNX protobuf by hand so tests need neither Python
//! nor files on disk, and can produce every kind of broken model on demand.

/// ONNX `TensorProto.DataType` codes used by the tests.
pub const FLOAT: i64 = 1;
/// 64-bit integer element type.
pub const INT64: i64 = 7;
/// 64-bit float element type.
pub const DOUBLE: i64 = 11;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}
fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}
fn int(out: &mut Vec<u8>, field: u64, v: i64) {
    key(out, field, 0);
    varint(out, v as u64);
}

/// An axis of a declared input/output shape.
#[derive(Clone, Copy, Debug)]
pub enum Dim {
    /// Fixed size.
    Fixed(i64),
    /// Symbolic (dynamic) axis.
    Param(&'static str),
}

/// A node attribute.
pub enum Attr {
    /// Integer attribute.
    Int(&'static str, i64),
    /// Integer list attribute.
    Ints(&'static str, Vec<i64>),
}

/// Builds a ModelProto.
#[derive(Default)]
pub struct ModelBuilder {
    graph: Vec<u8>,
    meta: Vec<(String, String)>,
}

fn value_info(name: &str, elem: i64, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Fixed(v) => int(&mut dim, 1, *v),
            Dim::Param(p) => bytes(&mut dim, 2, p.as_bytes()),
        }
        bytes(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    int(&mut tensor, 1, elem);
    bytes(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    bytes(&mut vi, 1, name.as_bytes());
    bytes(&mut vi, 2, &ty);
    vi
}

impl ModelBuilder {
    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: i64, dims: &[Dim]) -> &mut Self {
        let vi = value_info(name, elem, dims);
        bytes(&mut self.graph, 11, &vi);
        self
    }
    /// Declares a graph output.
    pub fn output(&mut self, name: &str, elem: i64, dims: &[Dim]) -> &mut Self {
        let vi = value_info(name, elem, dims);
        bytes(&mut self.graph, 12, &vi);
        self
    }
    /// Adds a node.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[Attr],
    ) -> &mut Self {
        let mut n = Vec::new();
        for i in inputs {
            bytes(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            bytes(&mut n, 2, o.as_bytes());
        }
        bytes(&mut n, 4, op.as_bytes());
        for a in attrs {
            let mut ab = Vec::new();
            match a {
                Attr::Int(name, v) => {
                    bytes(&mut ab, 1, name.as_bytes());
                    int(&mut ab, 3, *v);
                    int(&mut ab, 20, 2);
                }
                Attr::Ints(name, vs) => {
                    bytes(&mut ab, 1, name.as_bytes());
                    for v in vs {
                        int(&mut ab, 8, *v);
                    }
                    int(&mut ab, 20, 7);
                }
            }
            bytes(&mut n, 5, &ab);
        }
        bytes(&mut self.graph, 1, &n);
        self
    }
    /// Adds a float initializer.
    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> &mut Self {
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, FLOAT, dims, &raw)
    }
    /// Adds an int64 initializer.
    pub fn init_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> &mut Self {
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, INT64, dims, &raw)
    }
    fn init_raw(&mut self, name: &str, elem: i64, dims: &[i64], raw: &[u8]) -> &mut Self {
        let mut t = Vec::new();
        for d in dims {
            int(&mut t, 1, *d);
        }
        int(&mut t, 2, elem);
        bytes(&mut t, 8, name.as_bytes());
        bytes(&mut t, 9, raw);
        bytes(&mut self.graph, 5, &t);
        self
    }
    /// Adds (or replaces) a metadata entry.
    pub fn meta(&mut self, k: &str, v: &str) -> &mut Self {
        self.meta.retain(|(mk, _)| mk != k);
        self.meta.push((k.to_string(), v.to_string()));
        self
    }
    /// Serialises the model (IR 8, opset 17).
    pub fn build(&self) -> Vec<u8> {
        let mut m = Vec::new();
        int(&mut m, 1, 8);
        bytes(&mut m, 2, b"grown-tests");
        let mut g = self.graph.clone();
        bytes(&mut g, 2, b"test");
        bytes(&mut m, 7, &g);
        let mut opset = Vec::new();
        bytes(&mut opset, 1, b"");
        int(&mut opset, 2, 17);
        bytes(&mut m, 8, &opset);
        for (k, v) in &self.meta {
            let mut e = Vec::new();
            bytes(&mut e, 1, k.as_bytes());
            bytes(&mut e, 2, v.as_bytes());
            bytes(&mut m, 14, &e);
        }
        m
    }
}

/// Mel config of the test models: small, but valid for the analysis.
pub fn test_mel_json(n_mels: usize) -> String {
    format!(
        r#"{{"sample_rate":8000,"n_fft":256,"hop":64,"win":256,"n_mels":{n_mels},"fmin":0.0,"fmax":4000.0}}"#
    )
}

/// Metadata of a valid test NCA model.
pub fn nca_meta(b: &mut ModelBuilder, channels: usize, n_mels: usize) {
    b.meta("grown.contract", "1")
        .meta("grown.kind", "nca")
        .meta("grown.representation", "mel")
        .meta("grown.channels", &channels.to_string())
        .meta("grown.spec_channel", "0")
        .meta("grown.spec_scale", "4.0")
        .meta("grown.spec_offset", "-5.0")
        .meta("grown.mel", &test_mel_json(n_mels))
        .meta("grown.growth_steps", "24")
        .meta("grown.fire_rate", "0.5")
        .meta("grown.seed_state", r#"{"kind":"normal","std":0.1}"#)
        .meta("grown.train_frames", "16")
        .meta("grown.perception", "conv3x3")
        .meta("grown.unroll", "1")
        .meta("grown.target", "test target")
        .meta("grown.license", "CC0");
}

/// What kind of update rule the test model computes.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Rule {
    /// `next = state + 0.5 * mask * tanh(conv3x3(state))`: neighbours
    /// interact, so growth spreads and trajectories diverge with the seed.
    Conv,
    /// `next = state * inf`: every output is NaN or infinite.
    Poison,
}

/// The contract's `[batch, rows, n_mels, frames]` tensor shape with a dynamic
/// frames axis, so tests that hand-build a broken model state only the sizes.
pub fn nca_dims(batch: usize, rows: usize, n_mels: usize) -> [Dim; 4] {
    [
        Dim::Fixed(batch as i64),
        Dim::Fixed(rows as i64),
        Dim::Fixed(n_mels as i64),
        Dim::Param("frames"),
    ]
}

/// A valid NCA model (C channels, `n_mels` bands, dynamic frames), with
/// its graph computing `rule`. Returned as a builder so tests can break it.
pub fn nca_builder(channels: usize, n_mels: usize, rule: Rule) -> ModelBuilder {
    nca_builder_unrolled(channels, n_mels, rule, 1)
}

/// Like [`nca_builder`], applying the rule `unroll` times per call, row
/// `j` of `update_mask` masking step `j` (the contract's unrolled variant).
pub fn nca_builder_unrolled(
    channels: usize,
    n_mels: usize,
    rule: Rule,
    unroll: usize,
) -> ModelBuilder {
    let mut b = ModelBuilder::default();
    let c = channels as i64;
    b.input("state", FLOAT, &nca_dims(1, channels, n_mels))
        .input("update_mask", FLOAT, &nca_dims(unroll, 1, n_mels))
        .output("next_state", FLOAT, &nca_dims(1, channels, n_mels));
    match rule {
        Rule::Conv => {
            let n = channels * channels * 9;
            let w: Vec<f32> = (0..n as u64)
                .map(|i| grown_rng::normal(99, 7, i) * 0.6)
                .collect();
            let bias: Vec<f32> = (0..c as u64)
                .map(|i| grown_rng::normal(99, 8, i) * 0.1)
                .collect();
            b.init_f32("w", &[c, c, 3, 3], &w)
                .init_f32("b", &[c], &bias)
                .init_f32("rate", &[], &[0.5])
                .init_i64("axis0", &[1], &[0]);
            let mut cur = "state".to_string();
            for j in 0..unroll {
                let mask = if unroll == 1 {
                    "update_mask".to_string()
                } else {
                    let (s, e) = (format!("s{j}"), format!("e{j}"));
                    b.init_i64(&s, &[1], &[j as i64])
                        .init_i64(&e, &[1], &[j as i64 + 1]);
                    let out = format!("mask{j}");
                    b.node("Slice", &["update_mask", &s, &e, "axis0"], &[&out], &[]);
                    out
                };
                let next = if j + 1 == unroll {
                    "next_state".to_string()
                } else {
                    format!("st{j}")
                };
                let (y, t, tm, d) = (
                    format!("y{j}"),
                    format!("t{j}"),
                    format!("tm{j}"),
                    format!("d{j}"),
                );
                b.node(
                    "Conv",
                    &[&cur, "w", "b"],
                    &[&y],
                    &[
                        Attr::Ints("kernel_shape", vec![3, 3]),
                        Attr::Ints("pads", vec![1, 1, 1, 1]),
                    ],
                )
                .node("Tanh", &[&y], &[&t], &[])
                .node("Mul", &[&t, &mask], &[&tm], &[])
                .node("Mul", &[&tm, "rate"], &[&d], &[])
                .node("Add", &[&cur, &d], &[&next], &[]);
                cur = next;
            }
        }
        Rule::Poison => {
            b.init_f32("inf", &[], &[f32::INFINITY])
                .node("Mul", &["update_mask", "inf"], &["mi"], &[])
                .node("Mul", &["state", "mi"], &["next_state"], &[]);
        }
    }
    nca_meta(&mut b, channels, n_mels);
    b.meta("grown.unroll", &unroll.to_string());
    b
}

/// Bytes of a valid test NCA model.
pub fn nca_model(channels: usize, n_mels: usize, rule: Rule) -> Vec<u8> {
    nca_builder(channels, n_mels, rule).build()
}
