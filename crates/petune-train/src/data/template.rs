//! Typed prompt templates: how an example becomes the one string a masked LM reads.
//!
//! The LPT authors bake each template into `text_a` with `str.format` (lpt-reference §4.1,
//! `encoder-only/data/process.py`), e.g. `'{} . It was <mask> .'.format(text_a)`, and tokenize
//! the result as a single segment. LM-BFF (Gao et al. 2021, `run_experiment.sh` and
//! `tokenize_multipart_input` in github.com/princeton-nlp/LM-BFF), whose templates the paper's
//! Table 8 lists, also lowercases the first character of the second sentence (`*sentl_1*`) and
//! drops the last character of the first (`*sent-_0*`). A [`Template`] is a list of
//! [`TemplatePart`]s covering both, rendered with the model's own mask token string so the
//! caller tokenizes one string.
//!
//! Text form (used by [`Template::parse`], custom tasks and serde): `{text}`, `{text_pair}`,
//! `{mask}`; sentence placeholders take modifiers `|lower_first` and `|drop_last`
//! (`{text_pair|lower_first}`); `{{` and `}}` are literal braces; everything else is literal.

use std::fmt;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::example::Example;

/// Which text segment a template slot reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// The first segment, `{S1}` (`Example::text_a`).
    A,
    /// The second segment, `{S2}` (`Example::text_b`).
    B,
}

/// LM-BFF's per-sentence edits, applied in LM-BFF's order (lowercase, then drop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextTransform {
    /// Lowercase the first character (`*sentl_i*`: "The cat" → "the cat").
    pub lower_first: bool,
    /// Drop the last character (`*sent-_i*`, in practice the final punctuation).
    pub drop_last: bool,
}

impl TextTransform {
    /// Applies the edits to `text` (character-wise, like Python's `text[:1]`, `text[:-1]`).
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        if self.lower_first {
            if let Some(c) = chars.next() {
                out.extend(c.to_lowercase());
            }
        }
        out.extend(chars);
        if self.drop_last {
            out.pop();
        }
        out
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    /// A text segment, possibly edited.
    Text {
        /// Which segment.
        slot: Slot,
        /// The edits applied to it.
        transform: TextTransform,
    },
    /// The mask token, rendered as the model's mask string (`<mask>`, `[MASK]`).
    Mask,
    /// Fixed text, spaces included exactly as they must appear.
    Literal(String),
}

impl TemplatePart {
    /// The unedited first segment.
    pub fn a() -> Self {
        TemplatePart::Text { slot: Slot::A, transform: TextTransform::default() }
    }

    /// The unedited second segment.
    pub fn b() -> Self {
        TemplatePart::Text { slot: Slot::B, transform: TextTransform::default() }
    }

    /// A segment with edits.
    pub fn text(slot: Slot, lower_first: bool, drop_last: bool) -> Self {
        TemplatePart::Text { slot, transform: TextTransform { lower_first, drop_last } }
    }

    /// Literal text.
    pub fn lit(s: &str) -> Self {
        TemplatePart::Literal(s.to_string())
    }
}

/// A validated template: exactly one mask, at least one `{text}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    parts: Vec<TemplatePart>,
}

impl Template {
    /// Builds a template from parts, merging adjacent literals.
    ///
    /// Exactly one [`TemplatePart::Mask`] is required because the MLM head reads one position
    /// (`mask_pos`, lpt-reference §4.1); `{text}` must appear or the input would be ignored.
    pub fn new(parts: Vec<TemplatePart>) -> Result<Self> {
        let mut merged: Vec<TemplatePart> = Vec::with_capacity(parts.len());
        for p in parts {
            match (merged.last_mut(), p) {
                (_, TemplatePart::Literal(s)) if s.is_empty() => {}
                (Some(TemplatePart::Literal(prev)), TemplatePart::Literal(s)) => prev.push_str(&s),
                (_, p) => merged.push(p),
            }
        }
        let masks = merged.iter().filter(|p| matches!(p, TemplatePart::Mask)).count();
        if masks != 1 {
            return Err(Error::config(
                "template",
                format!(
                    "needs exactly one {{mask}}, found {masks} in `{}`",
                    Template::display_parts(&merged)
                ),
            ));
        }
        let has_a = merged.iter().any(|p| matches!(p, TemplatePart::Text { slot: Slot::A, .. }));
        if !has_a {
            return Err(Error::config(
                "template",
                format!("needs a {{text}} placeholder: `{}`", Template::display_parts(&merged)),
            ));
        }
        Ok(Template { parts: merged })
    }

    /// Parses the text form (module docs). Unknown placeholders, unknown modifiers and
    /// unbalanced braces are [`Error::Config`] with field `template`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |msg: String| Error::config("template", format!("{msg} in `{s}`"));
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut it = s.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '{' if it.peek().map(|&(_, d)| d) == Some('{') => {
                    it.next();
                    lit.push('{');
                }
                '}' if it.peek().map(|&(_, d)| d) == Some('}') => {
                    it.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(bad(format!(
                        "unmatched `}}` at byte {i} (write `}}}}` for a literal brace)"
                    )))
                }
                '{' => {
                    let start = i + 1;
                    let mut end = None;
                    for (j, d) in it.by_ref() {
                        if d == '}' {
                            end = Some(j);
                            break;
                        }
                        if d == '{' {
                            return Err(bad(format!("nested `{{` at byte {j}")));
                        }
                    }
                    let Some(end) = end else {
                        return Err(bad(format!("unclosed `{{` at byte {i}")));
                    };
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Template::parse_placeholder(&s[start..end]).map_err(bad)?);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(TemplatePart::Literal(lit));
        }
        Template::new(parts)
    }

    fn parse_placeholder(inner: &str) -> std::result::Result<TemplatePart, String> {
        let mut pieces = inner.split('|').map(str::trim);
        let name = pieces.next().unwrap_or_default();
        let slot = match name {
            "mask" => {
                return match pieces.next() {
                    None => Ok(TemplatePart::Mask),
                    Some(m) => Err(format!("{{mask}} takes no modifier (got `{m}`)")),
                };
            }
            "text" => Slot::A,
            "text_pair" => Slot::B,
            other => {
                return Err(format!(
                    "unknown placeholder `{{{other}}}` (known: {{text}}, {{text_pair}}, {{mask}})"
                ))
            }
        };
        let mut transform = TextTransform::default();
        for m in pieces {
            match m {
                "lower_first" => transform.lower_first = true,
                "drop_last" => transform.drop_last = true,
                other => {
                    return Err(format!(
                        "unknown modifier `{other}` on {{{name}}} (known: lower_first, drop_last)"
                    ))
                }
            }
        }
        Ok(TemplatePart::Text { slot, transform })
    }

    /// Wraps parts already known to be valid (the built-in task templates, whose validity a
    /// test checks through [`Template::new`]), so task code needs no panicking path.
    pub(crate) fn from_trusted_parts(parts: Vec<TemplatePart>) -> Self {
        Template { parts }
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// True when the template reads the second segment.
    pub fn uses_text_pair(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, TemplatePart::Text { slot: Slot::B, .. }))
    }

    /// Renders one input string; `mask_token` is the tokenizer's mask string (`<mask>` for
    /// RoBERTa, `[MASK]` for BERT/DeBERTa). A template that reads `{text_pair}` needs
    /// `text_b`; a missing one is [`Error::Input`]. A `text_b` the template does not read is
    /// ignored, as in the authors' single-segment encoding.
    pub fn render(&self, text_a: &str, text_b: Option<&str>, mask_token: &str) -> Result<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Mask => out.push_str(mask_token),
                TemplatePart::Text { slot: Slot::A, transform } => {
                    out.push_str(&transform.apply(text_a))
                }
                TemplatePart::Text { slot: Slot::B, transform } => {
                    let b = text_b.ok_or_else(|| {
                        Error::input(format!(
                            "template `{self}` needs a second segment (text_pair) but the example has none"
                        ))
                    })?;
                    out.push_str(&transform.apply(b));
                }
            }
        }
        Ok(out)
    }

    /// [`Template::render`] on an [`Example`].
    pub fn render_example(&self, ex: &Example, mask_token: &str) -> Result<String> {
        self.render(&ex.text_a, ex.text_b.as_deref(), mask_token)
    }

    fn display_parts(parts: &[TemplatePart]) -> String {
        let mut s = String::new();
        for p in parts {
            match p {
                TemplatePart::Literal(l) => s.push_str(&l.replace('{', "{{").replace('}', "}}")),
                TemplatePart::Mask => s.push_str("{mask}"),
                TemplatePart::Text { slot, transform } => {
                    s.push('{');
                    s.push_str(match slot {
                        Slot::A => "text",
                        Slot::B => "text_pair",
                    });
                    if transform.lower_first {
                        s.push_str("|lower_first");
                    }
                    if transform.drop_last {
                        s.push_str("|drop_last");
                    }
                    s.push('}');
                }
            }
        }
        s
    }
}

/// The text form, which [`Template::parse`] reads back.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Template::display_parts(&self.parts))
    }
}

impl std::str::FromStr for Template {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Template::parse(s)
    }
}

impl TryFrom<String> for Template {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Template::parse(&s)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_single() {
        let t = Template::parse("{text} . It was {mask} .").unwrap();
        assert_eq!(
            t.parts(),
            &[
                TemplatePart::a(),
                TemplatePart::lit(" . It was "),
                TemplatePart::Mask,
                TemplatePart::lit(" .")
            ]
        );
        assert_eq!(
            t.render("a fine film", None, "<mask>").unwrap(),
            "a fine film . It was <mask> ."
        );
        assert!(!t.uses_text_pair());
    }

    #[test]
    fn modifiers_and_escapes() {
        let t = Template::parse("{text|drop_last}?{mask}, {text_pair|lower_first} {{x}}").unwrap();
        assert!(t.uses_text_pair());
        let s = t.render("Is it raining?", Some("The sky is grey."), "[MASK]").unwrap();
        assert_eq!(s, "Is it raining?[MASK], the sky is grey. {x}");
        // Round trip through the text form.
        assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn transform_is_char_wise() {
        let t = TextTransform { lower_first: true, drop_last: true };
        assert_eq!(t.apply("Élan!"), "élan");
        assert_eq!(t.apply(""), "");
        assert_eq!(TextTransform::default().apply("Abc"), "Abc");
    }

    #[test]
    fn errors_are_typed() {
        for bad in [
            "{text} {label}",
            "{text} {mask} {mask}",
            "{text}",
            "{mask} only",
            "{text} {mask",
            "{text} } {mask}",
            "{text|upper} {mask}",
            "{mask|lower_first} {text}",
            "{te{xt} {mask}",
        ] {
            let e = Template::parse(bad).unwrap_err();
            assert!(matches!(&e, Error::Config { field, .. } if field == "template"), "{bad}: {e}");
        }
        let e = Template::parse("{text} {label} {mask}").unwrap_err();
        assert!(e.to_string().contains("unknown placeholder `{label}`"), "{e}");
    }

    #[test]
    fn missing_pair_is_input_error() {
        let t = Template::parse("{text} ? {mask} , {text_pair}").unwrap();
        assert!(matches!(t.render("a", None, "<mask>"), Err(Error::Input(_))));
    }

    #[test]
    fn serde_as_string() {
        let t = Template::parse("{mask} : {text}").unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"{mask} : {text}\"");
        assert_eq!(serde_json::from_str::<Template>(&j).unwrap(), t);
        assert!(serde_json::from_str::<Template>("\"{text} {oops} {mask}\"").is_err());
    }
}
