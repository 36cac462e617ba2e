package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// chainDomain starts every canonical encoding. Changing what the encoding
// covers requires a new domain string (v2) so old chains still verify.
const chainDomain = "qunshao/evidence/v1\n"

// GenesisHash is the PrevHash of the first record of every group chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Field tags of the canonical encoding, in the order they appear.
const (
	tPrev byte = iota + 1
	tGroupKey
	tSeq
	tKind
	tPlatform
	tBot
	tGroupID
	tGroupName
	tMsgID
	tDedup
	tActorID
	tActorNick
	tActorCard
	tActorRole
	tRoleSource
	tOperator
	tOccurred
	tTZ
	tReceived
	tText
	tSegments
	tDetail
	tRawSHA
	tSourceFile
	tSourcePos
	tSourceUnit
	tSourceFormat
	tImporter
	tEnd
)

// canonical returns the byte string a record's hash is computed over: the
// domain, then every hashed field as tag, length (uvarint) and bytes, in a
// fixed order. Integers are 8-byte big-endian. The text is the original
// bytes, so a message whose text had to be sanitised for the database is
// still chained as it was received. The raw payload enters through its
// SHA-256, so verification also checks the stored payload against it.
//
// Length prefixes make the encoding injective: no two different records
// share an encoding (decodeCanonical is its inverse, which the fuzz test
// checks).
func canonical(r *Record) []byte {
	text := r.OriginalText()
	n := len(chainDomain) + 32*12 + len(r.GroupKey) + len(r.GroupName) + len(r.ActorNick) +
		len(r.ActorCard) + len(text) + len(r.Segments) + len(r.Detail) + len(r.DedupKey) + 512
	b := make([]byte, 0, n)
	b = append(b, chainDomain...)
	str := func(tag byte, s string) {
		b = append(b, tag)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	i64 := func(tag byte, v int64) {
		b = append(b, tag)
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	str(tPrev, r.PrevHash)
	str(tGroupKey, r.GroupKey)
	i64(tSeq, r.ChainSeq)
	str(tKind, r.Kind)
	str(tPlatform, r.Platform)
	str(tBot, r.BotID)
	str(tGroupID, r.GroupID)
	str(tGroupName, r.GroupName)
	str(tMsgID, r.MsgID)
	str(tDedup, r.DedupKey)
	str(tActorID, r.ActorID)
	str(tActorNick, r.ActorNick)
	str(tActorCard, r.ActorCard)
	str(tActorRole, r.ActorRole)
	str(tRoleSource, r.RoleSource)
	str(tOperator, r.OperatorID)
	i64(tOccurred, r.OccurredUS)
	i64(tTZ, int64(r.TZOffset))
	i64(tReceived, r.ReceivedUS)
	b = append(b, tText)
	b = binary.AppendUvarint(b, uint64(len(text)))
	b = append(b, text...)
	str(tSegments, r.Segments)
	str(tDetail, r.Detail)
	str(tRawSHA, r.RawSHA256)
	str(tSourceFile, r.SourceFile)
	i64(tSourcePos, r.SourcePos)
	str(tSourceUnit, r.SourceUnit)
	str(tSourceFormat, r.SourceFormat)
	str(tImporter, r.Importer)
	b = append(b, tEnd)
	return b
}

// linkHash is the hex SHA-256 of the record's canonical encoding.
func linkHash(r *Record) string {
	sum := sha256.Sum256(canonical(r))
	return hex.EncodeToString(sum[:])
}

// rawHash is the hex SHA-256 of a raw payload.
func rawHash(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

var errCanonical = errors.New("malformed canonical encoding")

// decodeCanonical parses an encoding made by canonical. It exists to prove
// the encoding injective (fuzzed) and to let an independent verifier read a
// link without the database schema.
func decodeCanonical(b []byte) (*Record, error) {
	if len(b) < len(chainDomain) || string(b[:len(chainDomain)]) != chainDomain {
		return nil, fmt.Errorf("%w: missing domain", errCanonical)
	}
	b = b[len(chainDomain):]
	r := &Record{}
	str := func(tag byte) (string, error) {
		if len(b) == 0 || b[0] != tag {
			return "", fmt.Errorf("%w: expected field %d", errCanonical, tag)
		}
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return "", fmt.Errorf("%w: bad length of field %d", errCanonical, tag)
		}
		s := string(b[1+k : 1+k+int(n)])
		b = b[1+k+int(n):]
		return s, nil
	}
	i64 := func(tag byte) (int64, error) {
		if len(b) < 9 || b[0] != tag {
			return 0, fmt.Errorf("%w: expected integer field %d", errCanonical, tag)
		}
		v := int64(binary.BigEndian.Uint64(b[1:9]))
		b = b[9:]
		return v, nil
	}
	var err error
	type field struct {
		tag byte
		dst *string
	}
	strs := []field{
		{tPrev, &r.PrevHash}, {tGroupKey, &r.GroupKey},
	}
	for _, f := range strs {
		if *f.dst, err = str(f.tag); err != nil {
			return nil, err
		}
	}
	if r.ChainSeq, err = i64(tSeq); err != nil {
		return nil, err
	}
	strs = []field{
		{tKind, &r.Kind}, {tPlatform, &r.Platform}, {tBot, &r.BotID}, {tGroupID, &r.GroupID},
		{tGroupName, &r.GroupName}, {tMsgID, &r.MsgID}, {tDedup, &r.DedupKey}, {tActorID, &r.ActorID},
		{tActorNick, &r.ActorNick}, {tActorCard, &r.ActorCard}, {tActorRole, &r.ActorRole},
		{tRoleSource, &r.RoleSource}, {tOperator, &r.OperatorID},
	}
	for _, f := range strs {
		if *f.dst, err = str(f.tag); err != nil {
			return nil, err
		}
	}
	if r.OccurredUS, err = i64(tOccurred); err != nil {
		return nil, err
	}
	tz, err := i64(tTZ)
	if err != nil {
		return nil, err
	}
	r.TZOffset = int32(tz)
	if int64(r.TZOffset) != tz {
		return nil, fmt.Errorf("%w: zone offset out of range", errCanonical)
	}
	if r.ReceivedUS, err = i64(tReceived); err != nil {
		return nil, err
	}
	text, err := str(tText)
	if err != nil {
		return nil, err
	}
	r.TextRaw = []byte(text)
	strs = []field{
		{tSegments, &r.Segments}, {tDetail, &r.Detail}, {tRawSHA, &r.RawSHA256}, {tSourceFile, &r.SourceFile},
	}
	for _, f := range strs {
		if *f.dst, err = str(f.tag); err != nil {
			return nil, err
		}
	}
	if r.SourcePos, err = i64(tSourcePos); err != nil {
		return nil, err
	}
	strs = []field{
		{tSourceUnit, &r.SourceUnit}, {tSourceFormat, &r.SourceFormat}, {tImporter, &r.Importer},
	}
	for _, f := range strs {
		if *f.dst, err = str(f.tag); err != nil {
			return nil, err
		}
	}
	if len(b) != 1 || b[0] != tEnd {
		return nil, fmt.Errorf("%w: trailing bytes", errCanonical)
	}
	return r, nil
}
