//! Template rendering for every task in both styles, label words, GPT-2 verbalizers.
//!
//! Expected strings: the authors' `str.format` templates in `encoder-only/data/process.py`
//! (lpt-reference §4.1) with `<mask>`, and LM-BFF's manual templates from its
//! `run_experiment.sh` (`_` = space, parts concatenated as written, `sent-_0` drops the last
//! character, `+sentl_1` prepends a space and lowercases the first character).

use petune_core::Error;
use petune_train::data::{Example, TaskName, TemplateStyle};

const S1: &str = "The movie was shot in Rome.";
const S2: &str = "Filming took place in Italy.";

fn render(task: TaskName, style: TemplateStyle, mask: &str) -> String {
    let ex = if task.is_pair() { Example::pair(S1, S2, 0) } else { Example::single(S1, 0) };
    task.template(style).render_example(&ex, mask).unwrap()
}

#[test]
fn authors_code_templates() {
    use TaskName::*;
    let want = [
        (Sst2, "The movie was shot in Rome. . It was <mask> ."),
        (Mr, "The movie was shot in Rome. . It was <mask> ."),
        (Mpqa, "The movie was shot in Rome. . It was <mask> ."),
        (Subj, "The movie was shot in Rome. . It was <mask> ."),
        (Trec, "<mask> : The movie was shot in Rome."),
        (Mnli, "The movie was shot in Rome. ? <mask> , Filming took place in Italy."),
        (Qnli, "The movie was shot in Rome. ? <mask> , Filming took place in Italy."),
        (Rte, "The movie was shot in Rome. ? <mask> , Filming took place in Italy."),
        (Mrpc, "The movie was shot in Rome. ? <mask> , Filming took place in Italy."),
        (Qqp, "The movie was shot in Rome. <mask> , Filming took place in Italy."),
        // The VADER sentiment tasks take MR's template.
        (Tweets, "The movie was shot in Rome. . It was <mask> ."),
        (Amazon, "The movie was shot in Rome. . It was <mask> ."),
        (Nyt, "The movie was shot in Rome. . It was <mask> ."),
    ];
    assert_eq!(want.len(), TaskName::ALL.len());
    for (task, s) in want {
        assert_eq!(render(task, TemplateStyle::AuthorsCode, "<mask>"), s, "{task}");
        // The default style is the authors' code.
        assert_eq!(
            task.template(TemplateStyle::default()),
            task.template(TemplateStyle::AuthorsCode)
        );
    }
}

#[test]
fn paper_lmbff_templates() {
    use TaskName::*;
    let want = [
        (Sst2, "The movie was shot in Rome. It was[MASK]."),
        (Mr, "The movie was shot in Rome. It was[MASK]."),
        (Mpqa, "The movie was shot in Rome. It was[MASK]."),
        (Subj, "The movie was shot in Rome. This is[MASK]."),
        (Trec, "[MASK]: The movie was shot in Rome."),
        (Mnli, "The movie was shot in Rome?[MASK], filming took place in Italy."),
        (Qnli, "The movie was shot in Rome?[MASK], filming took place in Italy."),
        (Rte, "The movie was shot in Rome?[MASK], filming took place in Italy."),
        (Mrpc, "The movie was shot in Rome.[MASK], filming took place in Italy."),
        (Qqp, "The movie was shot in Rome.[MASK], filming took place in Italy."),
        (Tweets, "The movie was shot in Rome. It was[MASK]."),
        (Amazon, "The movie was shot in Rome. It was[MASK]."),
        (Nyt, "The movie was shot in Rome. It was[MASK]."),
    ];
    for (task, s) in want {
        assert_eq!(render(task, TemplateStyle::Paper, "[MASK]"), s, "{task}");
    }
}

#[test]
fn template_text_forms() {
    assert_eq!(
        TaskName::Sst2.template(TemplateStyle::AuthorsCode).to_string(),
        "{text} . It was {mask} ."
    );
    assert_eq!(TaskName::Trec.template(TemplateStyle::AuthorsCode).to_string(), "{mask} : {text}");
    assert_eq!(
        TaskName::Rte.template(TemplateStyle::Paper).to_string(),
        "{text|drop_last}?{mask}, {text_pair|lower_first}"
    );
}

#[test]
fn pair_template_needs_text_b() {
    let r = TaskName::Rte
        .template(TemplateStyle::AuthorsCode)
        .render_example(&Example::single(S1, 0), "<mask>");
    assert!(matches!(r, Err(Error::Input(_))), "{r:?}");
}

#[test]
fn label_words_in_label_order() {
    use TaskName::*;
    let want: [(TaskName, &[&str]); 13] = [
        (Sst2, &["terrible", "great"]),
        (Mr, &["terrible", "great"]),
        (Mpqa, &["terrible", "great"]),
        (Subj, &["subjective", "objective"]),
        (Trec, &["Description", "Entity", "Expression", "Human", "Location", "Number"]),
        // get_labels: contradiction, entailment, neutral
        (Mnli, &["No", "Yes", "Maybe"]),
        // get_labels: entailment, not_entailment
        (Qnli, &["Yes", "No"]),
        (Rte, &["Yes", "No"]),
        (Mrpc, &["No", "Yes"]),
        (Qqp, &["No", "Yes"]),
        (Tweets, &["terrible", "great"]),
        (Amazon, &["terrible", "great"]),
        (Nyt, &["terrible", "great"]),
    ];
    for (task, words) in want {
        for style in [TemplateStyle::AuthorsCode, TemplateStyle::Paper] {
            assert_eq!(task.label_words(style), words, "{task} {style:?}");
            // Raw words: the caller adds the BPE space.
            assert!(task.label_words(style).iter().all(|w| !w.starts_with(' ')));
        }
        assert_eq!(task.label_names().len(), words.len());
    }
}

#[test]
fn gpt2_verbalizers() {
    use TaskName::*;
    let single = [
        (Sst2, "terrible"),
        (Mpqa, "terrible"),
        (Mr, "terrible"),
        (Subj, "subjective"),
        (Trec, "Description"),
        (Tweets, "terrible"),
        (Amazon, "terrible"),
        (Nyt, "terrible"),
    ];
    for (task, first) in single {
        let v = task.gpt2_verbalizer().unwrap();
        assert_eq!(v.pattern, "It was %s .");
        assert_eq!(v.descriptions()[0], format!(" It was {first} ."));
    }
    assert_eq!(
        Rte.gpt2_verbalizer().unwrap().descriptions(),
        vec![" They are Yes .", " They are No ."]
    );
    assert_eq!(
        Qnli.gpt2_verbalizer().unwrap().descriptions(),
        vec![" They are Yes .", " They are No ."]
    );
    assert_eq!(
        Mrpc.gpt2_verbalizer().unwrap().descriptions(),
        vec![" They are No .", " They are Yes ."]
    );
    assert!(Mnli.gpt2_verbalizer().is_none());
    assert!(Qqp.gpt2_verbalizer().is_none());
}
