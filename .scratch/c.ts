import { createSign, createVerify, X509Certificate } from 'node:crypto';
import * as v from '../test/conformance/vectors';
console.log(createSign('RSA-SHA256').update(v.GO_SIGNER_VECTOR.message).sign(v.GO_SDK_TEST_KEY, 'base64') === v.GO_SIGNER_VECTOR.signature);
const m = v.NOTIFY_VECTOR;
console.log(createVerify('RSA-SHA256').update(`${m.headers['Wechatpay-Timestamp']}\n${m.headers['Wechatpay-Nonce']}\n${m.body}\n`).verify(new X509Certificate(m.platformCertificate).publicKey, m.headers['Wechatpay-Signature'], 'base64'));
console.log(Buffer.byteLength(v.utf8OfBytes(128)), Buffer.byteLength(v.utf8OfBytes(80)));
const r = v.REQUEST_SIGN_VECTOR;
console.log(createSign('RSA-SHA256').update(`${r.method}\n${r.url}\n${r.timestamp}\n${r.nonce}\n${r.body}\n`).sign(v.DOC_TEST_MERCHANT_KEY, 'base64') === r.signature);
