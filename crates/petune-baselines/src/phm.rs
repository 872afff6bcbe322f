//! Parameterised hypercomplex multiplication layers (Zhang et al., ICLR 2021; as used by
//! Compacter and by S-IDPG-PHM, Wu et al., NAACL 2022): the weight of a linear map
//! `in → out` is a sum of `n` Kronecker products `W = Σᵢ Rᵢ ⊗ Sᵢ` with rules
//! `Rᵢ: [n, n]` and factors `Sᵢ: [in/n, out/n]`, so it costs `n³ + in·out/n` parameters
//! instead of `in·out`.
//!
//! Init: factors Xavier-uniform on `(in/n, out/n)`, rules N(0, 1/n²), which gives `W`
//! the variance of a Xavier-initialised dense weight (`n` terms of variance
//! `1/n² · 2n/(in + out)` each); bias zero.

use petune_core::{Error, Result};
use tch::nn::{self, Init};
use tch::Tensor;

/// A PHM linear layer `y = x W + b`.
#[derive(Debug)]
pub struct PhmLinear {
    /// `[n, n, n]`: rule `i` is `rules[i]`.
    rules: Tensor,
    /// `[n, in/n, out/n]`.
    factors: Tensor,
    /// `[out]`.
    bias: Tensor,
}

impl PhmLinear {
    /// Parameters of a PHM layer: `n³ + in·out/n + out`.
    pub fn params(n: i64, d_in: i64, d_out: i64) -> i64 {
        n * n * n + d_in * d_out / n + d_out
    }

    /// Checks that `n` divides both sizes.
    pub fn check(n: i64, d_in: i64, d_out: i64) -> Result<()> {
        if n < 1 || d_in % n != 0 || d_out % n != 0 {
            return Err(Error::config(
                "phm_n",
                format!("must divide both sizes of the {d_in} → {d_out} map, got {n}"),
            ));
        }
        Ok(())
    }

    /// Allocates the layer under `p`.
    pub fn new(p: &nn::Path, n: i64, d_in: i64, d_out: i64) -> Result<Self> {
        Self::check(n, d_in, d_out)?;
        let (fi, fo) = (d_in / n, d_out / n);
        let bound = (6.0 / (fi + fo) as f64).sqrt();
        Ok(PhmLinear {
            rules: p.var("rules", &[n, n, n], Init::Randn { mean: 0.0, stdev: 1.0 / n as f64 }),
            factors: p.var("factors", &[n, fi, fo], Init::Uniform { lo: -bound, up: bound }),
            bias: p.var("bias", &[d_out], Init::Const(0.0)),
        })
    }

    /// The dense weight `[in, out]` = `Σᵢ Rᵢ ⊗ Sᵢ`.
    pub fn weight(&self) -> Tensor {
        let n = self.rules.size()[0];
        let (fi, fo) = (self.factors.size()[1], self.factors.size()[2]);
        // W[a·fi + c, b·fo + d] = Σᵢ R[i, a, b] · S[i, c, d]: [n, fi, n, fo] → [in, out]
        Tensor::einsum("iab,icd->acbd", &[&self.rules, &self.factors], None::<&[i64]>)
            .reshape([n * fi, n * fo])
    }

    /// `x W + b` on `[.., in]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.weight()) + &self.bias
    }
}
