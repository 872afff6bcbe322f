//! Chat templates: the Jinja template a chat model ships (GGUF metadata
//! `tokenizer.chat_template`, or `chat_template` in a Hugging Face folder's
//! `tokenizer_config.json`) rendered with `minijinja`, the way transformers'
//! `apply_chat_template` renders it (src/transformers/utils/chat_template_utils.py:
//! `trim_blocks` and `lstrip_blocks` on, `messages`, `add_generation_prompt`,
//! `bos_token`, `eos_token` and `raise_exception` in scope; Python string methods such
//! as `.strip()` through minijinja-contrib's `pycompat`).

use std::path::Path;

use petune_backbones::gguf::{chat_template, is_gguf_path, resolve_gguf_path, GgufFile};
use petune_core::fsio::read_json;
use petune_core::{Error, Result};
use serde::Serialize;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: "user".into(), content: content.into() }
    }
}

/// The chat template of a model: from a `.gguf` file (or a folder holding one and no
/// `config.json`), else from the folder's `tokenizer_config.json` (`chat_template` as a
/// string, or the `default` entry of a list of named templates). `None` when the model
/// has none.
pub fn chat_template_of(model: &Path) -> Result<Option<String>> {
    if is_gguf_path(model) {
        let file = GgufFile::open(resolve_gguf_path(model)?)?;
        return chat_template(file.metadata());
    }
    let path = model.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let cfg: serde_json::Value = read_json(&path)?;
    let bad = || {
        Error::config(
            "chat_template",
            format!("{}: expected a string or a list of {{name, template}}", path.display()),
        )
    };
    match cfg.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) => Ok(Some(t.clone())),
        Some(serde_json::Value::Array(named)) => {
            for entry in named {
                if entry.get("name").and_then(|n| n.as_str()) == Some("default") {
                    let t = entry.get("template").and_then(|t| t.as_str()).ok_or_else(bad)?;
                    return Ok(Some(t.to_string()));
                }
            }
            Err(Error::config(
                "chat_template",
                format!("{}: the list of templates has no `default` one", path.display()),
            ))
        }
        Some(_) => Err(bad()),
    }
}

/// Renders `template` for `messages`, ending with the assistant's turn opened when
/// `add_generation_prompt`. A template that does not parse or fails (its own
/// `raise_exception` included) is a typed error with minijinja's message.
pub fn render_chat(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> Result<String> {
    let fail = |e: minijinja::Error| Error::config("chat_template", format!("{e:#}"));
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(fail)?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, _> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
    });
    env.add_template("chat", template).map_err(fail)?;
    let ctx = minijinja::context! {
        messages => messages.iter().map(|m| minijinja::Value::from_pairs([("role", m.role.as_str()), ("content", m.content.as_str())])).collect::<Vec<_>>(),
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token.unwrap_or(""),
        eos_token => eos_token.unwrap_or(""),
    };
    env.get_template("chat").map_err(fail)?.render(ctx).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template (its GGUF metadata).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_renders_as_transformers_does() {
        let got = render_chat(SMOLLM2, &[Message::user("Hi!")], true, None, None).unwrap();
        let want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(got, want);
        let no_prompt = render_chat(SMOLLM2, &[Message::user("Hi!")], false, None, None).unwrap();
        assert_eq!(no_prompt, want.trim_end_matches("<|im_start|>assistant\n"));
    }

    #[test]
    fn python_methods_blocks_and_exceptions() {
        // `.strip()` (pycompat), trim/lstrip of block lines, bos/eos in scope. The expected
        // text is Python jinja2's (`Environment(trim_blocks=True, lstrip_blocks=True)`,
        // jinja2 of .venv-fixtures): lstrip only strips before block tags.
        let t = "{{ bos_token }}\n{% for m in messages %}\n  {{ m.role }}: {{ m.content.strip() }}{{ eos_token }}\n{% endfor %}";
        let got = render_chat(t, &[Message::user("  a b ")], false, Some("<s>"), Some("</s>"));
        assert_eq!(got.unwrap(), "<s>\n  user: a b</s>\n");
        let raising = "{{ raise_exception('only user turns') }}";
        let err = render_chat(raising, &[], true, None, None).unwrap_err();
        assert!(err.to_string().contains("only user turns"), "{err}");
        assert!(render_chat("{% for %}", &[], true, None, None).is_err());
    }

    #[test]
    fn template_from_tokenizer_config() {
        let dir = std::env::temp_dir().join(format!("petune-chat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(chat_template_of(&dir).unwrap(), None);
        let write = |v: serde_json::Value| {
            std::fs::write(dir.join("tokenizer_config.json"), v.to_string()).unwrap()
        };
        write(serde_json::json!({"chat_template": "{{ 1 }}"}));
        assert_eq!(chat_template_of(&dir).unwrap().as_deref(), Some("{{ 1 }}"));
        write(serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "x"}, {"name": "default", "template": "y"}]}));
        assert_eq!(chat_template_of(&dir).unwrap().as_deref(), Some("y"));
        write(serde_json::json!({"chat_template": 3}));
        assert!(chat_template_of(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
