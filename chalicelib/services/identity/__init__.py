"""Staff identity: sign-in with MFA, browser sessions, memberships and invitations, password resets."""
