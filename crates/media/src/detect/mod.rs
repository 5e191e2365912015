//! Answering-machine, tone and beep detection (being built).
