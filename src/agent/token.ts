// The one-time enrollment token an operator hands to `galley agent enroll --token T`: its format
// (`gle1_` + base64url JSON of stack, instance, secret and the server CA's fingerprint) is defined
// once, in src/fleet/agent-enrollment.ts, for the server that mints it and the agent that reads it.

export {
  certificateFingerprint as caFingerprint,
  decodeEnrollment as decodeEnrollmentToken,
  type EnrollmentToken,
  encodeEnrollment as encodeEnrollmentToken,
} from "../fleet/agent-enrollment.ts";
