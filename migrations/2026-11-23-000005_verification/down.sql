DROP TABLE recovery_codes;
DROP TABLE totp_factors;
DROP TABLE pending_identifier_changes;
DROP TABLE verification_codes;
