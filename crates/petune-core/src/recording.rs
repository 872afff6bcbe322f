//! A [`Hooks`] implementation that records every site it sees, in order, with shapes.
//!
//! It is the instrument of the site-contract tests (a new backbone is admitted when
//! its recording matches the documented order) and of `petune inspect`.

use std::cell::RefCell;

use tch::Tensor;

use crate::error::Result;
use crate::hooks::{Hooks, KvPrefix};
use crate::site::{LinearSite, NormSite, SublayerSite};
use crate::state::SeqState;

/// One fired site with the shape it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteEvent {
    /// `input_embeds` with the word-embedding shape.
    InputEmbeds(Vec<i64>),
    /// `before_layer(layer)` with the hidden-state shape.
    BeforeLayer(usize, Vec<i64>),
    /// `attn_prefix(layer)` was asked.
    AttnPrefix(usize),
    /// `linear(site)` with input and output shapes.
    Linear(LinearSite, Vec<i64>, Vec<i64>),
    /// `norm(site)` with the output shape.
    Norm(NormSite, Vec<i64>),
    /// `sublayer_out(site)` with the shape.
    SublayerOut(SublayerSite, Vec<i64>),
}

/// Records [`SiteEvent`]s and otherwise behaves as the identity.
#[derive(Debug, Default)]
pub struct RecordingHooks {
    events: RefCell<Vec<SiteEvent>>,
}

impl RecordingHooks {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<SiteEvent> {
        self.events.borrow().clone()
    }

    fn push(&self, e: SiteEvent) {
        self.events.borrow_mut().push(e);
    }
}

impl Hooks for RecordingHooks {
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        self.push(SiteEvent::InputEmbeds(s.hidden.size()));
        Ok(s)
    }

    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        self.push(SiteEvent::BeforeLayer(layer, s.hidden.size()));
        Ok(s)
    }

    fn attn_prefix(&self, layer: usize) -> Option<KvPrefix> {
        self.push(SiteEvent::AttnPrefix(layer));
        None
    }

    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        self.push(SiteEvent::Linear(site, x.size(), y.size()));
        y
    }

    fn norm(&self, site: NormSite, y: Tensor) -> Tensor {
        self.push(SiteEvent::Norm(site, y.size()));
        y
    }

    fn sublayer_out(&self, site: SublayerSite, h: Tensor) -> Tensor {
        self.push(SiteEvent::SublayerOut(site, h.size()));
        h
    }
}
