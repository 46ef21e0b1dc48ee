// An mbprobe test case written outside mbprobe: does a SYN carrying an RFC 6994 experimental option
// (kind 253, ExID 0x6d62) reach the responder intact?
//   mbprobe-initiator run --responder HOST --test-file examples/syn-experimental-option.mjs
// The default export receives mbprobe's test API, so this file imports nothing.
export default (mbprobe) => {
  const { options, defaultSynOptions, sharedVerdict, judgeOption, isSyn, isSynAck, first } = mbprobe;
  const probeOption = () => options.experimental(0x6d62, Uint8Array.of(1, 2, 3, 4), 253);
  return {
    name: 'syn-experimental-option',
    sends: 'a SYN with an RFC 6994 experimental option (kind 253, ExID 0x6d62, 8 bytes)',
    verdicts: ['passed', 'modified', 'removed'],
    // What the responder is asked to do beyond answering normally (see ResponderPlan): nothing here.
    plan: {},
    // The script: a handshake whose SYN carries the option, then an orderly close.
    async run(connection) {
      const synAck = await connection.connect({ options: [...defaultSynOptions(), probeOption()] });
      if (synAck) await connection.close();
    },
    // The judge: a pure function of what both ends saw.
    judge(observations) {
      const shared = sharedVerdict(observations, isSyn, isSynAck);
      if (shared) return shared;
      const sent = first(observations.initiator.sent, isSyn);
      const received = first(observations.responder.received, isSyn);
      return judgeOption(sent, received, 253);
    },
  };
};
