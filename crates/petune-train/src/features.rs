//! Turning examples into model inputs: template rendering, tokenization (once, before
//! training), the mask position, and dynamic-padding collation into batches
//! (lpt-reference.md §4.1: one segment with the template baked in; `mask_pos` is the
//! index of the mask token, and when truncation removes it the mask replaces the
//! second-to-last token, as the authors' `_convert_examples_to_features` does).

use petune_backbones::{TextInput, TextTokenizer};
use petune_core::{BackboneInput, Error, Result};
use tch::{Device, Kind, Tensor};

use crate::data::{Dataset, Template};

/// One tokenized example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// Token ids, special tokens included.
    pub ids: Vec<i64>,
    /// Segment ids.
    pub types: Vec<i64>,
    /// Index of the mask token, or −1 when there is no template.
    pub mask_pos: i64,
    /// Class index.
    pub label: usize,
    /// LM scoring: tokens before the label span (the generator's context), else 0.
    pub context_len: usize,
    /// LM scoring: one `(ids, target_start)` per class; `ids`/`context_len` above are the
    /// gold class's. Empty otherwise.
    pub candidates: Vec<Vec<i64>>,
}

impl Feature {
    /// The same example with class `c`'s label span (LM scoring).
    pub fn with_candidate(&self, c: usize) -> Feature {
        let ids = self.candidates.get(c).cloned().unwrap_or_else(|| self.ids.clone());
        Feature { types: vec![0; ids.len()], ids, candidates: Vec::new(), ..self.clone() }
    }
}

/// Direct LM scoring on decoders (lpt-reference.md §4.2): every class's description
/// (`" It was great ."`) is tokenized; tokens before the first position where the
/// descriptions differ are shared context, the rest plus EOS is the class's target. The
/// sequence starts with the model's BOS and the target ends with its EOS (the
/// tokenizer's ids from config.json; GPT-2: `<|endoftext|>` for both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmScoring {
    /// Shared context tokens (`" It was"`).
    pub context: Vec<i64>,
    /// Per-class target tokens (`" great ."` + EOS).
    pub targets: Vec<Vec<i64>>,
    /// BOS id (GPT-2: `<|endoftext|>`).
    pub bos: i64,
}

/// The model's `(bos, eos)` for LM scoring: the tokenizer's ids from config.json, each
/// falling back to the other and then to an `<|endoftext|>` token.
fn lm_specials(tok: &TextTokenizer) -> Result<(i64, i64)> {
    let text_end = tok.token_id("<|endoftext|>");
    let eos = tok.eos_id().or(text_end).or(tok.bos_id());
    let bos = tok.bos_id().or(eos);
    bos.zip(eos).ok_or_else(|| Error::Tokenizer {
        path: tok.path().to_path_buf(),
        msg: "LM scoring needs the model's bos/eos ids (config.json) or an `<|endoftext|>` token"
            .into(),
    })
}

impl LmScoring {
    /// Builds the scoring layout from a `%s` pattern and label words.
    pub fn new(tok: &TextTokenizer, pattern: &str, words: &[String]) -> Result<LmScoring> {
        let (bos, eos) = lm_specials(tok)?;
        let descs: Vec<Vec<i64>> = words
            .iter()
            .map(|w| {
                tok.ids_without_special(&format!(" {}", pattern.replace("%s", w.trim()).trim()))
            })
            .collect::<Result<_>>()?;
        let first = descs.first().ok_or_else(|| Error::config("label_words", "no label words"))?;
        let start = (0..first.len())
            .find(|&i| descs.iter().any(|d| d.get(i) != first.get(i)))
            .unwrap_or(first.len());
        if descs.iter().any(|d| d.len() <= start) {
            return Err(Error::config("label_words", "two classes have the same LM description"));
        }
        let targets =
            descs.iter().map(|d| d[start..].iter().copied().chain([eos]).collect()).collect();
        Ok(LmScoring { context: first[..start].to_vec(), targets, bos })
    }
}

/// How examples are encoded.
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    /// Tokenizer (its padding and truncation are petune's).
    pub tokenizer: TextTokenizer,
    /// Template with a mask slot, or `None` to feed the raw text (pair) as model tuning does.
    pub template: Option<Template>,
    /// Longest input in tokens.
    pub max_len: usize,
    /// Cut over-long inputs instead of failing.
    pub truncate: bool,
    /// GPT-2 LM scoring layout instead of a mask template.
    pub lm: Option<LmScoring>,
}

/// The mask token of a tokenizer: `[MASK]` (BERT, DeBERTa) or `<mask>` (RoBERTa).
pub fn mask_token(tok: &TextTokenizer) -> Result<(String, i64)> {
    for t in ["[MASK]", "<mask>"] {
        if let Some(id) = tok.token_id(t) {
            return Ok((t.to_string(), id));
        }
    }
    Err(Error::Tokenizer {
        path: tok.path().to_path_buf(),
        msg: "no mask token ([MASK] or <mask>) in the vocabulary".into(),
    })
}

/// The tokens of each label word that is not exactly one token for `tok` (with the
/// leading space BPE vocabularies need), as `(word, tokens)`; empty when all are one.
pub fn multi_token_words(
    tok: &TextTokenizer,
    words: &[String],
) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for w in words {
        let ids = tok.ids_without_special(&format!(" {}", w.trim()))?;
        if ids.len() != 1 {
            let tokens =
                ids.iter().map(|&i| tok.token(i).unwrap_or_else(|| format!("#{i}"))).collect();
            out.push((w.clone(), tokens));
        }
    }
    Ok(out)
}

/// Vocabulary ids of the label words; each must be exactly one token (with the leading
/// space BPE vocabularies need: ` great` → `Ġgreat`). The error names every word that is
/// not, shows its tokens, and says how to fix it.
pub fn label_word_ids(tok: &TextTokenizer, words: &[String]) -> Result<Vec<i64>> {
    let bad = multi_token_words(tok, words)?;
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .map(|(w, t)| format!("`{w}` is {} tokens [{}]", t.len(), t.join(", ")))
            .collect();
        return Err(Error::config(
            "label_words",
            format!(
                "{} for this tokenizer; an MLM verbalizer head needs one token per class: give \
                 `label_words` in the task (one single-token word per class, in class order), or \
                 use a linear head (`\"head\": {{\"kind\": \"linear\", \"token\": \"mask\"}}`, \
                 `petune train --head linear`)",
                shown.join("; ")
            ),
        ));
    }
    words
        .iter()
        .map(|w| {
            let ids = tok.ids_without_special(&format!(" {}", w.trim()))?;
            ids.first()
                .copied()
                .ok_or_else(|| Error::config("label_words", format!("`{w}` has no tokens")))
        })
        .collect()
}

impl FeatureEncoder {
    /// LM scoring: `[bos] + S1 (+ S2) + context | target_c`, texts cut from their end
    /// when too long (the template goes first, as the authors truncate).
    fn encode_lm(&self, lm: &LmScoring, ds: &Dataset) -> Result<Vec<Feature>> {
        let longest = lm.targets.iter().map(Vec::len).max().unwrap_or(0);
        ds.examples
            .iter()
            .enumerate()
            .map(|(i, ex)| {
                let mut text = self.tokenizer.ids_without_special(&ex.text_a)?;
                if let Some(b) = &ex.text_b {
                    text.extend(self.tokenizer.ids_without_special(b)?);
                }
                let room = self.max_len.saturating_sub(1 + lm.context.len() + longest);
                if text.len() > room {
                    if !self.truncate || room == 0 {
                        return Err(Error::input(format!(
                            "{} example {i}: {} tokens do not fit in {} with the LM-scoring template; enable truncation",
                            ds.task,
                            text.len(),
                            self.max_len
                        )));
                    }
                    text.truncate(room);
                }
                let prefix: Vec<i64> = [lm.bos].into_iter().chain(text).chain(lm.context.iter().copied()).collect();
                let candidates: Vec<Vec<i64>> =
                    lm.targets.iter().map(|t| prefix.iter().chain(t).copied().collect()).collect();
                let ids = candidates.get(ex.label).cloned().ok_or_else(|| {
                    Error::input(format!("{} example {i}: label {} has no LM description", ds.task, ex.label))
                })?;
                Ok(Feature {
                    types: vec![0; ids.len()],
                    ids,
                    mask_pos: -1,
                    label: ex.label,
                    context_len: prefix.len(),
                    candidates,
                })
            })
            .collect()
    }

    /// Encodes every example of `ds`; a failure names the example.
    pub fn encode(&self, ds: &Dataset) -> Result<Vec<Feature>> {
        if ds.is_empty() {
            return Err(Error::input(format!("dataset `{}` is empty", ds.task)));
        }
        if let Some(lm) = &self.lm {
            return self.encode_lm(lm, ds);
        }
        let mask = match &self.template {
            Some(_) => Some(mask_token(&self.tokenizer)?),
            None => None,
        };
        ds.examples
            .iter()
            .enumerate()
            .map(|(i, ex)| {
                let input = match (&self.template, &mask) {
                    (Some(t), Some((m, _))) => TextInput::single(t.render_example(ex, m)?),
                    _ => TextInput { text: ex.text_a.clone(), text_pair: ex.text_b.clone() },
                };
                let (mut ids, types) = self
                    .tokenizer
                    .encode_ids(&input, self.max_len, self.truncate)
                    .map_err(|e| Error::input(format!("{} example {i}: {e}", ds.task)))?;
                let mask_pos = match &mask {
                    Some((_, id)) => match ids.iter().position(|x| x == id) {
                        Some(p) => p as i64,
                        None => {
                            // Truncated away: the authors put it on the second-to-last token.
                            let p = ids.len().saturating_sub(2);
                            ids[p] = *id;
                            p as i64
                        }
                    },
                    None => -1,
                };
                Ok(Feature {
                    ids,
                    types,
                    mask_pos,
                    label: ex.label,
                    context_len: 0,
                    candidates: Vec::new(),
                })
            })
            .collect()
    }
}

/// A padded batch ready for the model.
#[derive(Debug)]
pub struct Batch {
    /// Ids, mask, segments.
    pub input: BackboneInput,
    /// Mask position of each example `[B]` (−1 without template).
    pub mask_pos: Tensor,
    /// Class index of each example `[B]`.
    pub labels: Tensor,
    /// Real (non-padding) tokens in the batch.
    pub n_tokens: i64,
    /// LM scoring: 1 on label-span tokens `[B, T]`.
    pub target_mask: Option<Tensor>,
}

/// Pads `features` to their longest (right padding).
pub fn collate(features: &[&Feature], pad_id: i64, device: Device) -> Result<Batch> {
    let t = features.iter().map(|f| f.ids.len()).max().unwrap_or(0);
    let b = features.len();
    if b == 0 || t == 0 {
        return Err(Error::input("cannot collate an empty batch"));
    }
    let mut ids = vec![pad_id; b * t];
    let mut types = vec![0i64; b * t];
    let mut mask = vec![0i64; b * t];
    let lm = features.iter().any(|f| f.context_len > 0);
    let mut context = vec![0i64; b * t];
    let mut target = vec![0i64; b * t];
    for (r, f) in features.iter().enumerate() {
        ids[r * t..r * t + f.ids.len()].copy_from_slice(&f.ids);
        types[r * t..r * t + f.types.len()].copy_from_slice(&f.types);
        mask[r * t..r * t + f.ids.len()].iter_mut().for_each(|m| *m = 1);
        if lm {
            context[r * t..r * t + f.context_len].iter_mut().for_each(|m| *m = 1);
            target[r * t + f.context_len..r * t + f.ids.len()].iter_mut().for_each(|m| *m = 1);
        }
    }
    let shape = [b as i64, t as i64];
    let tensor = |v: &[i64]| Tensor::from_slice(v).view(shape).to_device(device);
    let mut input = BackboneInput::new(tensor(&ids))?
        .with_attention_mask(tensor(&mask))?
        .with_token_types(tensor(&types))?;
    if lm {
        input = input.with_context_mask(tensor(&context))?;
    }
    let mask_pos: Vec<i64> = features.iter().map(|f| f.mask_pos).collect();
    let labels: Vec<i64> = features.iter().map(|f| f.label as i64).collect();
    let n_tokens = features.iter().map(|f| f.ids.len() as i64).sum();
    Ok(Batch {
        input,
        mask_pos: Tensor::from_slice(&mask_pos).to_device(device),
        labels: Tensor::from_slice(&labels).to_device(device).to_kind(Kind::Int64),
        n_tokens,
        target_mask: lm.then(|| tensor(&target)),
    })
}
