"""Local fakes of external providers (Twilio, Resend, Vapi, Stripe) for tests and demos."""
