// An audio worklet that hands what it hears to the page in blocks: the desktop's recorder of
// received audio (for troubleshooting and the browser tests), off the page's main thread.
class Recorder extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0]?.[0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("desk-recorder", Recorder);
