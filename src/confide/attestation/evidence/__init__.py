"""Evidence formats: what a TEE produces, parsed (never trusted) into typed models.

SGX/TDX DCAP quotes and TD reports, SEV-SNP attestation reports, their TCB
layouts and certificate tables, behind one bounds-checked reader.
"""
