//! The editor's and the host thread's handle on a running engine.

use std::path::PathBuf;

use crossbeam::channel::Sender;

use super::wire::EngineCommand;

/// What the editor needs to steer the engine: its command sender once it
/// runs, and which model files it was told to load, so a reactivation after
/// the editor loaded a file does not load it again.
#[derive(Default)]
pub struct EngineLink {
    /// Commands to the running engine; `None` before the first activation.
    pub commands: Option<Sender<EngineCommand>>,
    /// NCA model file the engine was told to load (`None`: the built-in one).
    pub model: Option<PathBuf>,
    /// Vocoder file the engine was told to load (`None`: built-in vocoder only).
    pub vocoder: Option<PathBuf>,
}

impl EngineLink {
    /// Tells a running engine to load whichever of `model` and `vocoder`
    /// differ from what it was last told. Without an engine only the wish is
    /// recorded in the parameters, which the first activation reads.
    pub fn sync(&mut self, model: Option<PathBuf>, vocoder: Option<PathBuf>) {
        let Some(tx) = &self.commands else { return };
        if model != self.model {
            let cmd = match &model {
                Some(path) => EngineCommand::LoadModel(path.clone()),
                None => EngineCommand::LoadBuiltInModel,
            };
            let _ = tx.send(cmd);
            self.model = model;
        }
        if vocoder != self.vocoder {
            let _ = tx.send(EngineCommand::LoadVocoder(vocoder.clone()));
            self.vocoder = vocoder;
        }
    }

    /// Sends one command to a running engine; false when none runs yet.
    pub fn send(&self, cmd: EngineCommand) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|tx| tx.send(cmd).is_ok())
    }
}
