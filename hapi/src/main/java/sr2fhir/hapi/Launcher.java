package sr2fhir.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.r5.JpaR5Config;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Starts HAPI FHIR's JPA server on 127.0.0.1 at http://127.0.0.1:PORT/fhir, in R5 mode, or in R4 mode
 * with the system property {@code sr2fhir.fhirVersion=R4}.
 *
 * <p>Usage: {@code Launcher PORT IG_PACKAGE_DIR [H2_FILE]}; without H2_FILE the database lives in memory.
 * Prints {@code sr2fhir-hapi: ready} once the server accepts requests.
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Launcher PORT IG_PACKAGE_DIR [H2_FILE]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        Path ig = Path.of(args[1]);
        if (args.length > 2) {
            ServerConfig.jdbcUrl = "jdbc:h2:file:" + Path.of(args[2]).toAbsolutePath();
        }
        boolean r4 = "R4".equalsIgnoreCase(System.getProperty("sr2fhir.fhirVersion", "R5"));
        AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext(
                ServerConfig.class, r4 ? JpaR4Config.class : JpaR5Config.class);
        FhirContext ctx = spring.getBean(FhirContext.class);

        RestfulServer fhir = new RestfulServer(ctx);
        fhir.registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
        fhir.registerProvider(spring.getBean(IJpaSystemProvider.class));
        fhir.setServerConformanceProvider(new JpaCapabilityStatementProvider(
                fhir,
                spring.getBean(IFhirSystemDao.class),
                spring.getBean(JpaStorageSettings.class),
                spring.getBean(ISearchParamRegistry.class),
                spring.getBean(IValidationSupport.class)));
        fhir.setPagingProvider(spring.getBean(DatabaseBackedPagingProvider.class));
        fhir.setDefaultResponseEncoding(EncodingEnum.JSON);
        fhir.registerInterceptor(IgValidation.interceptor(ctx, ig));

        Server jetty = new Server(new InetSocketAddress("127.0.0.1", port));
        ServletContextHandler handler = new ServletContextHandler();
        handler.setContextPath("/");
        handler.addServlet(new ServletHolder(fhir), "/fhir/*");
        jetty.setHandler(handler);
        jetty.setStopAtShutdown(true);
        jetty.start();
        Runtime.getRuntime().addShutdownHook(new Thread(spring::close));
        System.out.println("sr2fhir-hapi: ready at http://127.0.0.1:" + port + "/fhir (FHIR " + (r4 ? "R4" : "R5") + ")");
        jetty.join();
    }
}
