package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// serverTLS is what the chaincode server needs to take its peer only: its own key, the TLS
// CA (so the peer's Go client sends its certificate at all: it offers one only to a server
// that names its issuer) and the peer's certificate, the one leaf accepted.
type serverTLS struct {
	Cert, Key, ClientCA, Peer []byte
}

// config is shim.ChaincodeServer's TLS configuration, plus the pin on the peer's certificate:
// every other key the TLS CA issued (artifact store, API, admin) is refused in the handshake.
func (s serverTLS) config() (*tls.Config, error) {
	pair, err := tls.X509KeyPair(s.Cert, s.Key)
	if err != nil {
		return nil, fmt.Errorf("server key pair: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.ClientCA) {
		return nil, errors.New("no certificate in the client CA file")
	}
	pinned, err := firstCertificate(s.Peer)
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		Certificates:           []tls.Certificate{pair},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              roots,
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], pinned) {
				return errors.New("client certificate is not this chaincode server's peer")
			}
			return nil
		},
	}, nil
}

func firstCertificate(data []byte) ([]byte, error) {
	for rest := data; ; {
		block, more := pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
		rest = more
	}
}

// serve runs the contracts behind a gRPC server as shim.ChaincodeServer.Start does (same
// keepalive, message sizes and timeout), with tlsConfig (nil: no TLS, -insecure-dev only).
func serve(cs *shim.ChaincodeServer, tlsConfig *tls.Config) error {
	listener, err := net.Listen("tcp", cs.Address)
	if err != nil {
		return err
	}
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Minute, PermitWithoutStream: true}),
		grpc.MaxSendMsgSize(100 << 20),
		grpc.MaxRecvMsgSize(100 << 20),
		grpc.ConnectionTimeout(5 * time.Second),
	}
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	server := grpc.NewServer(opts...)
	peer.RegisterChaincodeServer(server, cs)
	return server.Serve(listener)
}
